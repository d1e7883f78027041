import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "../../App";
import { fakeGateway, TOKENS } from "../../test/fetch";

beforeEach(() => {
  localStorage.setItem("anju.tenant", "acme");
  localStorage.setItem("anju.session.acme", JSON.stringify(TOKENS));
});
afterEach(() => vi.unstubAllGlobals());

const CATALOGUE = {
  roles: [
    { key: "admin", name: "Administrator", permissions: ["project.read", "project.write"], dataScope: "all", builtin: true },
    { key: "viewer", name: "Viewer", permissions: ["project.read"], dataScope: "own", builtin: false },
  ],
  permissionCatalogue: [
    { key: "project.read", description: "Read projects and buildings" },
    { key: "project.write", description: "Create and change projects and buildings" },
    { key: "unit.read", description: "Read units" },
  ],
};

describe("role editor", () => {
  it("creates a role from the catalogue with its data scope, checking the key first", async () => {
    const sent = fakeGateway((call) =>
      call.operationName === "CreateCustomRole"
        ? {
            body: {
              data: {
                createRole: {
                  __typename: "RolePayload",
                  role: { ...(call.variables.input as object), builtin: false },
                },
              },
            },
          }
        : { body: { data: CATALOGUE } },
    );
    render(<App initialPath="/roles" locale="en" />);
    const user = userEvent.setup();
    expect(await screen.findByText("Viewer")).toBeInTheDocument();
    // Built-in roles cannot be edited here; custom ones can.
    expect(screen.getAllByRole("button", { name: "Edit" })).toHaveLength(1);

    await user.click(screen.getByRole("button", { name: "New role" }));
    const drawer = await screen.findByRole("dialog");
    await user.type(within(drawer).getByLabelText("Key"), "Bad Key");
    await user.type(within(drawer).getByLabelText("Name"), "Site visitor");
    await user.click(within(drawer).getByRole("button", { name: "Save" }));
    expect(await within(drawer).findByText(/2-64 lowercase letters/, { selector: ".ant-form-item-explain-error" })).toBeInTheDocument();
    expect(sent.filter((c) => c.operationName === "CreateCustomRole")).toHaveLength(0);

    await user.clear(within(drawer).getByLabelText("Key"));
    await user.type(within(drawer).getByLabelText("Key"), "site_visitor");
    await user.click(within(drawer).getByLabelText("Team"));
    await user.click(within(drawer).getByRole("checkbox", { name: /unit\.read/ }));
    await user.click(within(drawer).getByRole("checkbox", { name: /project\.read/ }));
    await user.click(within(drawer).getByRole("button", { name: "Save" }));
    await waitFor(() => expect(sent.some((c) => c.operationName === "CreateCustomRole")).toBe(true));
    const create = sent.find((c) => c.operationName === "CreateCustomRole")!;
    expect(create.variables.input).toEqual({
      key: "site_visitor",
      name: "Site visitor",
      dataScope: "team",
      permissions: ["project.read", "unit.read"], // in the catalogue's order
    });
    expect(create.headers.authorization).toBe("Bearer access-1");
  });

  it("shows why a role in use cannot be deleted", async () => {
    fakeGateway((call) =>
      call.operationName === "DeleteCustomRole"
        ? {
            body: {
              data: {
                deleteRole: {
                  __typename: "ConflictError",
                  code: "CONFLICT",
                  message: "role 'viewer' is assigned to 2 member(s); unassign it first",
                  field: "key",
                },
              },
            },
          }
        : { body: { data: CATALOGUE } },
    );
    render(<App initialPath="/roles" locale="en" />);
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "Delete" }));
    await user.click(await screen.findByRole("button", { name: "OK" }));
    expect(await screen.findByText("role 'viewer' is assigned to 2 member(s); unassign it first")).toBeInTheDocument();
  });
});
