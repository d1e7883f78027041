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

const PORTAL = {
  id: "r1",
  name: "Portal leads",
  position: 10,
  active: true,
  sources: ["PORTAL"],
  districts: ["Pudong"],
  languages: [],
  budgetMin: null,
  budgetMax: null,
  teamId: "t1",
  agentId: null,
  mode: "CLAIM",
  claimMinutes: 60,
  fallbackTeamIds: ["t2"],
  version: 3,
};
const DATA = {
  leadRoutes: [PORTAL],
  teams: [
    { id: "o1", name: "Pudong office", kind: "office" },
    { id: "t1", name: "Sales 1", kind: "team" },
    { id: "t2", name: "Backup", kind: "team" },
  ],
  members: [
    { account: { id: "m1", name: "Wang Fang" }, status: "active" },
    { account: { id: "m2", name: "Gone Away" }, status: "disabled" },
  ],
};

/** The option of an open drop-down (a chosen value carries the same title). */
async function option(title: string): Promise<HTMLElement> {
  return waitFor(() => {
    const found = [...document.querySelectorAll<HTMLElement>(".ant-select-item-option")].filter((o) => o.title === title);
    expect(found).toHaveLength(1);
    return found[0];
  });
}

function gateway(mutation: (call: Sent) => unknown) {
  return fakeGateway((call) => {
    if (call.operationName === "ConsoleViewer") return { body: { data: viewer(ADMIN) } };
    if (call.operationName === "ConsoleLeadRoutes") return { body: { data: DATA } };
    return { body: { data: mutation(call) } };
  });
}

describe("lead routing rules page", () => {
  it("lists the rules and creates one for an agent, checking the budget first", async () => {
    const sent = gateway(() => ({ createLeadRoute: { __typename: "LeadRoutePayload", route: { id: "r2", version: 1 } } }));
    render(<App initialPath="/routing" locale="en" />);
    const user = userEvent.setup();
    const row = (await screen.findByText("Portal leads", {}, FIRST)).closest("tr")!;
    expect(within(row).getByText("Portal")).toBeInTheDocument();
    expect(within(row).getByText("Pudong")).toBeInTheDocument();
    expect(within(row).getByText("Sales 1 · First to claim (60 min)")).toBeInTheDocument();
    expect(within(row).getByText("Backup")).toBeInTheDocument();

    await user.click(screen.getByRole("button", { name: "New rule" }));
    const drawer = await screen.findByRole("dialog");
    await user.click(within(drawer).getByLabelText("Name"));
    await user.paste("Walk-ins");
    await user.click(within(drawer).getByLabelText("Budget from"));
    await user.paste("5000000");
    await user.click(within(drawer).getByLabelText("Budget up to"));
    await user.paste("100");
    await user.click(within(drawer).getByLabelText("An agent"));
    await user.click(within(drawer).getByRole("button", { name: "Save" }));
    expect(await within(drawer).findByText("The maximum is below the minimum")).toBeInTheDocument();
    expect(await within(drawer).findByText("Agent is required")).toBeInTheDocument();
    expect(sent.some((c) => c.operationName === "CreateLeadRoute")).toBe(false);

    await user.clear(within(drawer).getByLabelText("Budget up to"));
    await user.paste("9000000");
    await user.click(within(drawer).getByLabelText("Agent"));
    expect(screen.queryByTitle("Gone Away")).toBeNull(); // only active members
    await user.click(await screen.findByTitle("Wang Fang"));
    await user.click(within(drawer).getByLabelText("Sources"));
    await user.click(await screen.findByTitle("Walk-in"));
    await user.click(within(drawer).getByRole("button", { name: "Save" }));
    await waitFor(() => expect(sent.some((c) => c.operationName === "CreateLeadRoute")).toBe(true));
    expect(sent.find((c) => c.operationName === "CreateLeadRoute")!.variables.input).toEqual({
      name: "Walk-ins",
      teamId: null,
      agentId: "m1",
      mode: "ROUND_ROBIN",
      position: 10,
      active: true,
      sources: ["WALK_IN"],
      districts: [],
      languages: [],
      budgetMin: 5000000,
      budgetMax: 9000000,
      fallbackTeamIds: [],
      claimMinutes: 15,
    });
  }, LONG);

  it("edits with the version read and shows a refusal beside its field or above the form", async () => {
    let reply: unknown = {
      __typename: "ValidationError",
      code: "BAD_USER_INPUT",
      message: "claim minutes are 1 to 1440",
      field: "claimMinutes",
    };
    const sent = gateway(() => ({ updateLeadRoute: reply }));
    render(<App initialPath="/routing" locale="en" />);
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "Edit: Portal leads" }, FIRST));
    const drawer = await screen.findByRole("dialog");
    expect(within(drawer).getByLabelText("Name")).toHaveValue("Portal leads");
    expect(within(drawer).getByLabelText("Minutes to claim")).toHaveValue("60");
    // The rule's own team as its fallback is refused here first.
    await user.click(within(drawer).getByLabelText("Fallback teams"));
    await user.click(await option("Sales 1"));
    await user.click(within(drawer).getByRole("button", { name: "Save" }));
    expect(await within(drawer).findByText("The rule's team is not its own fallback")).toBeInTheDocument();
    await user.click(within(drawer).getByLabelText("Fallback teams"));
    await user.keyboard("{Backspace}");
    await user.click(within(drawer).getByRole("button", { name: "Save" }));

    const item = within(drawer).getByLabelText("Minutes to claim").closest(".ant-form-item") as HTMLElement;
    expect(await within(item).findByText("claim minutes are 1 to 1440")).toBeInTheDocument();
    const update = sent.find((c) => c.operationName === "UpdateLeadRoute")!;
    expect(update.variables).toMatchObject({ id: "r1", expectedVersion: 3 });
    expect(update.variables.input).toMatchObject({ teamId: "t1", agentId: null, mode: "CLAIM", claimMinutes: 60, fallbackTeamIds: ["t2"] });

    reply = { __typename: "ConflictError", code: "CONFLICT", message: "the rule changed meanwhile (version 4)", field: "expectedVersion" };
    await user.click(within(drawer).getByRole("button", { name: "Save" }));
    expect(await within(drawer).findByText("the rule changed meanwhile (version 4)", { selector: ".ant-alert *" })).toBeInTheDocument();
  }, LONG);
});
