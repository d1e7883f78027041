import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "../../App";
import { fakeGateway, TOKENS, type Sent } from "../../test/fetch";
import { ADMIN, FIRST, LONG, viewer } from "../../test/viewer";

beforeEach(() => {
  localStorage.setItem("anju.tenant", "acme");
  localStorage.setItem("anju.session.acme", JSON.stringify(TOKENS));
});
afterEach(() => vi.unstubAllGlobals());

const TEAMS = {
  teams: [
    { id: "c1", name: "Acme Homes", kind: "company", parentId: null, memberIds: [] },
    { id: "o1", name: "Pudong office", kind: "office", parentId: "c1", memberIds: ["m1"] },
    { id: "t1", name: "Sales 1", kind: "team", parentId: "o1", memberIds: ["m1", "m2"] },
  ],
  members: [
    { account: { id: "m1", name: "Wang Fang" }, status: "active" },
    { account: { id: "m2", name: "Zhao Lei" }, status: "active" },
    { account: { id: "m3", name: "Chen Jie" }, status: "active" },
    { account: { id: "m4", name: "Gone Away" }, status: "disabled" },
  ],
};

function gateway(permissions: string[], mutation: (call: Sent) => unknown = () => ({})) {
  return fakeGateway((call) => {
    if (call.operationName === "ConsoleViewer") return { body: { data: viewer(permissions) } };
    if (call.operationName === "ConsoleTeams") return { body: { data: TEAMS } };
    return { body: { data: mutation(call) } };
  });
}

describe("teams page", () => {
  it("shows the tree with member names and creates an office under a company", async () => {
    const sent = gateway(ADMIN, (call) =>
      call.variables.input && (call.variables.input as { name: string }).name === "Taken"
        ? { createTeam: { __typename: "ValidationError", code: "BAD_USER_INPUT", message: "name must be 1 to 100 characters", field: "name" } }
        : { createTeam: { __typename: "TeamPayload", team: { id: "o2", name: "Xuhui office", kind: "office", parentId: "c1", memberIds: [] } } },
    );
    render(<App initialPath="/teams" locale="en" />);
    const user = userEvent.setup();
    const row = (await screen.findByText("Sales 1", {}, FIRST)).closest("tr")!;
    expect(within(row).getByText("Team")).toBeInTheDocument();
    expect(within(row).getByText("Wang Fang")).toBeInTheDocument();
    expect(within(row).getByText("Zhao Lei")).toBeInTheDocument();
    // The office is shown (expanded) with the team below it.
    expect(screen.getByText("Pudong office")).toBeInTheDocument();

    await user.click(screen.getByRole("button", { name: "New" }));
    const dialog = await screen.findByRole("dialog");
    await user.click(within(dialog).getByLabelText("Office"));
    await user.click(within(dialog).getByRole("button", { name: "Create" }));
    // Nothing sent without a name and the company it belongs to.
    expect(await within(dialog).findByText("Name is required")).toBeInTheDocument();
    expect(within(dialog).getByText("In company is required")).toBeInTheDocument();
    expect(sent.some((c) => c.operationName === "CreateTeam")).toBe(false);

    await user.click(within(dialog).getByLabelText("Name"));
    await user.paste("Taken");
    await user.click(within(dialog).getByLabelText("In company"));
    await user.click(await screen.findByTitle("Acme Homes"));
    await user.click(within(dialog).getByRole("button", { name: "Create" }));
    // The gateway's typed error beside the field it names.
    expect(await within(dialog).findByText("name must be 1 to 100 characters", { selector: ".ant-form-item-explain-error" })).toBeInTheDocument();
    expect(sent.filter((c) => c.operationName === "CreateTeam")[0].variables.input).toEqual({ name: "Taken", kind: "office", parentId: "c1" });

    await user.clear(within(dialog).getByLabelText("Name"));
    await user.paste("  Xuhui office ");
    await user.click(within(dialog).getByRole("button", { name: "Create" }));
    await waitFor(() => expect(sent.filter((c) => c.operationName === "CreateTeam")).toHaveLength(2));
    expect(sent.filter((c) => c.operationName === "CreateTeam")[1].variables.input).toEqual({ name: "Xuhui office", kind: "office", parentId: "c1" });
    await waitFor(() => expect(sent.filter((c) => c.operationName === "ConsoleTeams")).toHaveLength(2));
  }, LONG);

  it("adds and removes a team's members", async () => {
    const sent = gateway(ADMIN, (call) =>
      call.operationName === "AddTeamMember"
        ? { addTeamMember: { __typename: "TeamMembershipPayload", teamId: "t1", accountId: call.variables.accountId } }
        : { removeTeamMember: { __typename: "TeamMembershipPayload", teamId: "t1", accountId: call.variables.accountId } },
    );
    render(<App initialPath="/teams" locale="en" />);
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "Members: Sales 1" }, FIRST));
    const dialog = await screen.findByRole("dialog");
    const select = within(dialog).getByLabelText("Members");
    await user.click(select);
    // Zhao Lei (the last one) leaves, by the keyboard; Chen Jie joins; a disabled member is not offered.
    await user.keyboard("{Backspace}");
    expect(screen.queryByTitle("Gone Away")).toBeNull();
    await user.click(await screen.findByTitle("Chen Jie"));
    await user.click(within(dialog).getByRole("button", { name: "OK" }));
    await waitFor(() => expect(sent.filter((c) => c.operationName === "RemoveTeamMember")).toHaveLength(1));
    expect(sent.filter((c) => c.operationName === "AddTeamMember").map((c) => c.variables)).toEqual([{ teamId: "t1", accountId: "m3" }]);
    expect(sent.find((c) => c.operationName === "RemoveTeamMember")!.variables).toEqual({ teamId: "t1", accountId: "m2" });
  }, LONG);

  it("shows the teams without the buttons to change them to a member without team.manage", async () => {
    gateway(["member.read"]);
    render(<App initialPath="/teams" locale="en" />);
    expect(await screen.findByText("Sales 1", {}, FIRST)).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "New" })).toBeNull();
    expect(screen.queryByRole("button", { name: /^Members/ })).toBeNull();
  }, LONG);
});
