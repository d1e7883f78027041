import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import dayjs from "dayjs";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { MemoryRouter } from "react-router-dom";
import { AuthProvider } from "../../auth/Auth";
import { I18nProvider } from "../../i18n/I18n";
import { fakeGateway, TOKENS } from "../../test/fetch";
import { FIRST, LONG } from "../../test/viewer";
import { AuditPage, toFilter } from "./Audit";

// A small page keeps the table cheap to render in jsdom; the page's size is a prop (50 in the console).
const PAGE = 4;

beforeEach(() => {
  localStorage.setItem("anju.tenant", "acme");
  localStorage.setItem("anju.session.acme", JSON.stringify(TOKENS));
});
afterEach(() => vi.unstubAllGlobals());

const entry = (seq: number, over: Record<string, unknown> = {}) => ({
  seq,
  id: `e${seq}`,
  at: "2026-03-01T08:00:00Z",
  actorId: "m1",
  actorIp: "10.0.0.1",
  actorApp: "console",
  action: "createRole",
  outcome: "ok",
  targetType: "role",
  targetId: "site_visitor",
  details: { key: "site_visitor" },
  ...over,
});

describe("the audit filter", () => {
  it("sends empty fields as none and ends a range after its last minute", () => {
    expect(toFilter({ action: "  ", actorId: "" })).toEqual({ actorId: null, action: null, targetType: null, since: null, until: null });
    const since = dayjs("2026-03-01T08:15:42Z");
    const until = dayjs("2026-03-01T09:30:10Z");
    expect(toFilter({ action: " createRole ", range: [since, until] })).toMatchObject({
      action: "createRole",
      since: "2026-03-01T08:15:00.000Z",
      until: "2026-03-01T09:31:00.000Z",
    });
    expect(toFilter({ range: [null, until] })).toMatchObject({ since: null, until: "2026-03-01T09:31:00.000Z" });
  }, LONG);
});

describe("audit log page", () => {
  it("shows entries with their actor's name, filters them and loads older ones", async () => {
    const sent = fakeGateway((call) => {
      if (call.operationName === "ConsoleAuditActors") return { body: { data: { members: [{ account: { id: "m1", name: "Wang Fang" } }] } } };
      const before = call.variables.before as number | null;
      // A full first page (so there may be more), then the last three.
      const seqs = before == null ? Array.from({ length: PAGE }, (_, i) => 100 - i) : [90, 89, 88].filter((s) => s < before);
      return { body: { data: { auditLog: seqs.map((s) => entry(s, s === 100 ? { actorId: null, action: "signUp", outcome: "CONFLICT" } : {})) } } };
    });
    render(
      <I18nProvider locale="en">
        <AuthProvider>
          <MemoryRouter>
            <AuditPage pageSize={PAGE} />
          </MemoryRouter>
        </AuthProvider>
      </I18nProvider>,
    );
    const user = userEvent.setup();
    expect(await screen.findByText("signUp", {}, FIRST)).toBeInTheDocument();
    const first = screen.getByText("signUp").closest("tr")!;
    expect(within(first).getByText("System")).toBeInTheDocument();
    expect(within(first).getByText("CONFLICT")).toBeInTheDocument();
    expect(screen.getAllByText("Wang Fang").length).toBeGreaterThan(0);
    expect(sent.find((c) => c.operationName === "ConsoleAuditLog")!.variables).toEqual({ filter: {}, first: PAGE, before: null });

    await user.click(screen.getByRole("button", { name: "Load more" }));
    await waitFor(() => expect(screen.getByText("No more entries")).toBeInTheDocument());
    expect(sent.filter((c) => c.operationName === "ConsoleAuditLog")[1].variables.before).toBe(97);

    await user.click(screen.getByLabelText("Actor"));
    await user.click(await screen.findByTitle("Wang Fang"));
    await user.click(screen.getByLabelText("Action"));
    await user.paste("createRole");
    await user.click(screen.getByRole("button", { name: "Search" }));
    await waitFor(() => expect(sent.filter((c) => c.operationName === "ConsoleAuditLog")).toHaveLength(3));
    expect(sent.filter((c) => c.operationName === "ConsoleAuditLog")[2].variables).toEqual({
      filter: { actorId: "m1", action: "createRole", targetType: null, since: null, until: null },
      first: PAGE,
      before: null,
    });
  }, LONG);
});
