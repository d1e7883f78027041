import { render, screen, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "../App";
import { fakeGateway, TOKENS } from "../test/fetch";
import { ADMIN, FIRST, LONG, viewer } from "../test/viewer";

beforeEach(() => {
  localStorage.setItem("anju.tenant", "acme");
  localStorage.setItem("anju.session.acme", JSON.stringify(TOKENS));
});
afterEach(() => vi.unstubAllGlobals());

const menuLabels = () =>
  within(screen.getByRole("navigation"))
    .getAllByRole("menuitem")
    .map((item) => item.textContent);

describe("pages hidden by permission", () => {
  it("shows a member only the pages their permissions allow, and refuses the others by URL", async () => {
    const sent = fakeGateway((call) =>
      call.operationName === "ConsoleViewer" ? { body: { data: viewer(["project.read", "unit.read"]) } } : { body: { data: {} } },
    );
    render(<App initialPath="/staff" locale="en" />);
    expect(await screen.findByTestId("forbidden", {}, FIRST)).toHaveTextContent("it needs member.read");
    expect(menuLabels()).toEqual(["Home", "Sessions", "Projects", "Units"]);
    // The page's own query was never sent.
    expect(sent.map((c) => c.operationName)).toEqual(["ConsoleViewer"]);
    expect(screen.getByRole("button", { name: "Back to home" })).toBeInTheDocument();
  }, LONG);

  it("shows an admin every page", async () => {
    fakeGateway((call) =>
      call.operationName === "ConsoleViewer"
        ? { body: { data: viewer(ADMIN, ["admin"]) } }
        : { body: { data: { auditLog: [], members: [] } } },
    );
    render(<App initialPath="/audit" locale="en" />);
    expect(await screen.findByText("Audit log", { selector: ".ant-card-head-title" }, FIRST)).toBeInTheDocument();
    expect(menuLabels()).toEqual(["Home", "Staff", "Roles", "Sessions", "Teams", "Settings", "Lead routing", "Audit log"]);
    expect(screen.queryByTestId("forbidden")).toBeNull();
  }, LONG);

  it("names the permission a page needs for each guarded page", async () => {
    fakeGateway((call) => (call.operationName === "ConsoleViewer" ? { body: { data: viewer(["member.read"]) } } : { body: { data: {} } }));
    render(<App initialPath="/settings" locale="en" />);
    expect(await screen.findByTestId("forbidden", {}, FIRST)).toHaveTextContent("tenant.manage");
    expect(menuLabels()).toEqual(["Home", "Staff", "Sessions", "Teams"]);
  }, LONG);
});
