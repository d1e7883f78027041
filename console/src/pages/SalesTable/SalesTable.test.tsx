import { act, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "../../App";
import { SalesTableChanges } from "../../gql/documents";
import { resetZones } from "../../i18n/format";
import { fakeGateway, TOKENS, type Sent } from "../../test/fetch";
import { FakeSocket } from "../../test/ws";
import { layout, stackOf } from "./grid";

beforeEach(() => {
  localStorage.setItem("anju.tenant", "acme");
  localStorage.setItem("anju.session.acme", JSON.stringify(TOKENS));
  resetZones();
  FakeSocket.install();
});
afterEach(() => vi.unstubAllGlobals());

const CNY = (yuan: number) => ({ minorUnits: yuan * 100, currency: "CNY" });
const unit = (id: string, number: string, floor: number, status: string, price: number | null = 3_000_000) => ({
  id,
  number,
  floor,
  grossArea: "89.50",
  status,
  version: 1,
  holdExpiresAt: null,
  heldBy: null,
  listPrice: price == null ? null : CNY(price),
  unitType: null,
});

function table(seq = 40) {
  return {
    seq,
    building: { id: "b1", name: "1号楼", floors: 3, project: { id: "p1", name: "Riverside" } },
    units: [
      unit("u301", "301", 3, "AVAILABLE"),
      unit("u302", "302", 3, "SOLD"),
      unit("u201", "201", 2, "AVAILABLE"),
      unit("u202", "202", 2, "RESERVED"),
      unit("u101", "101", 1, "PLANNED", null),
    ],
    counts: [],
  };
}

const ME = { account: { id: "acc-1" }, permissions: ["unit.read", "unit.hold"] };

function gateway(extra: (call: Sent) => unknown = () => null, tables: (() => unknown)[] = [() => table()]) {
  let reads = 0;
  return fakeGateway((call) => {
    const answer = extra(call);
    if (answer) return { body: { data: answer } };
    if (call.operationName === "ConsoleSalesTable") {
      const next = tables[Math.min(reads, tables.length - 1)];
      reads += 1;
      return { body: { data: { salesTable: next(), me: ME } } };
    }
    if (call.operationName === "ConsoleRegional") {
      return { body: { data: { regionalSettings: { timeZone: "Asia/Shanghai", locale: "zh-CN", currency: "CNY" } } } };
    }
    return { status: 400, body: { errors: [{ message: `unexpected ${call.operationName}` }] } };
  });
}

const cell = (number: string) => document.querySelector(`[data-unit="${number}"]`) as HTMLElement;

describe("the sales table", () => {
  it("lays floors top first by stack, colours cells by status and counts them", async () => {
    gateway();
    render(<App initialPath="/buildings/b1/sales-table" locale="en" />);
    expect(await screen.findByTestId("sales-table-title")).toHaveTextContent("Riverside · 1号楼");
    const grid = screen.getByTestId("sales-grid");
    const rows = within(grid).getAllByRole("row").slice(1);
    expect(rows.map((r) => within(r).getByRole("rowheader").textContent)).toEqual(["Floor 3", "Floor 2", "Floor 1"]);
    expect(within(grid).getAllByRole("columnheader").map((h) => h.textContent)).toEqual(["Floor", "01", "02"]);
    // 101 has no unit in stack 02: the row has an empty cell there.
    expect(within(rows[2]).getAllByRole("cell")[1]).toBeEmptyDOMElement();
    expect(cell("302")).toHaveAttribute("data-status", "SOLD");
    expect(cell("301")).toHaveStyle({ background: "#d9f7be" });
    expect(cell("301")).toHaveTextContent("89.50 m²");
    expect(cell("301")).toHaveTextContent("CN¥3,000,000.00");
    expect(cell("101")).toHaveTextContent("—");
    expect(screen.getByTestId("count-AVAILABLE")).toHaveTextContent("2");
    expect(screen.getByTestId("count-ON_HOLD")).toHaveTextContent("0");
  });

  it("subscribes from the table's sequence by trusted id and applies changes live, once each", async () => {
    gateway();
    render(<App initialPath="/buildings/b1/sales-table" locale="en" />);
    await screen.findByTestId("sales-grid");
    await waitFor(() => expect(FakeSocket.last().subscriptions).toHaveLength(1));
    const socket = FakeSocket.last();
    expect(socket.url).toBe("ws://localhost:3000/graphql?tenant=acme");
    expect(socket.protocol).toBe("graphql-transport-ws");
    expect(socket.init).toEqual({ authorization: "Bearer access-1" });
    const sub = socket.subscriptions[0].payload;
    expect(sub.documentId).toBe(SalesTableChanges.id);
    expect(sub.operationName).toBe("SalesTableChanges");
    expect(sub.query).toBe(""); // the text never travels
    expect(sub.variables).toEqual({ buildingId: "b1", since: 40 });

    const change = (seq: number, unitId: string, status: string, price = 3_000_000) => ({
      unitChanges: {
        __typename: "UnitChange",
        seq,
        kind: "STATUS",
        unitId,
        status,
        version: seq,
        holdExpiresAt: null,
        listPrice: CNY(price),
      },
    });
    act(() => socket.next(change(41, "u301", "ON_HOLD")));
    await waitFor(() => expect(cell("301")).toHaveAttribute("data-status", "ON_HOLD"));
    expect(cell("301")).toHaveStyle({ background: "#fff1b8" });
    expect(screen.getByTestId("count-ON_HOLD")).toHaveTextContent("1");
    expect(screen.getByTestId("count-AVAILABLE")).toHaveTextContent("1");

    // A repeat (a resumed feed) and an older sequence change nothing.
    act(() => socket.next(change(41, "u201", "SOLD")));
    act(() => socket.next(change(30, "u201", "SOLD")));
    // A price change moves the price shown.
    act(() => socket.next(change(42, "u201", "AVAILABLE", 3_100_000)));
    await waitFor(() => expect(cell("201")).toHaveTextContent("CN¥3,100,000.00"));
    expect(cell("201")).toHaveAttribute("data-status", "AVAILABLE");
    expect(screen.getByTestId("count-SOLD")).toHaveTextContent("1");
  });

  it("reads the table again and resubscribes when the gateway says to refetch", async () => {
    const sent = gateway(() => null, [
      () => table(40),
      () => ({ ...table(90), units: table().units.map((u) => (u.id === "u201" ? { ...u, status: "SUBSCRIBED" } : u)) }),
    ]);
    render(<App initialPath="/buildings/b1/sales-table" locale="en" />);
    await screen.findByTestId("sales-grid");
    await waitFor(() => expect(FakeSocket.last().subscriptions).toHaveLength(1));
    const socket = FakeSocket.last();
    act(() => socket.next({ unitChanges: { __typename: "RefetchRequired", seq: 95, reason: "too far behind" } }));
    await waitFor(() => expect(cell("201")).toHaveAttribute("data-status", "SUBSCRIBED"));
    expect(sent.filter((c) => c.operationName === "ConsoleSalesTable")).toHaveLength(2);
    await waitFor(() => expect(socket.subscriptions).toHaveLength(2));
    expect(socket.completed).toEqual([socket.subscriptions[0].id]);
    expect(socket.subscriptions[1].payload.variables).toEqual({ buildingId: "b1", since: 90 });
  });

  it("shows a clicked unit and holds it when the member may", async () => {
    let held = false;
    const detail = () => ({
      unit: {
        id: "u301",
        number: "301",
        floor: 3,
        grossArea: "89.50",
        netArea: "70.25",
        orientation: "S",
        rooms: 3,
        status: held ? "ON_HOLD" : "AVAILABLE",
        standardStatus: held ? "HOLD" : "ACTIVE",
        holdExpiresAt: held ? "2030-01-01T04:30:00Z" : null,
        heldBy: held ? "acc-1" : null,
        statusChangedAt: "2030-01-01T04:00:00Z",
        version: held ? 2 : 1,
        tags: [],
        createdAt: "2029-12-01T00:00:00Z",
        listPrice: CNY(3_000_000),
        pricePerM2: { minorUnits: 3351955, currency: "CNY" },
        project: { id: "p1", name: "Riverside" },
        building: { id: "b1", name: "1号楼" },
        unitType: null,
      },
      me: ME,
    });
    const sent = gateway((call) => {
      if (call.operationName === "ConsoleUnit") return detail();
      if (call.operationName === "HoldUnit") {
        held = true;
        return { holdUnit: { __typename: "UnitPayload", unit: { id: "u301", status: "ON_HOLD", version: 2, holdExpiresAt: "2030-01-01T04:30:00Z", heldBy: "acc-1" } } };
      }
      return null;
    });
    render(<App initialPath="/buildings/b1/sales-table" locale="en" />);
    const user = userEvent.setup();
    await screen.findByTestId("sales-grid");
    await user.click(cell("301"));
    const panel = await screen.findByTestId("unit-panel");
    expect(within(panel).getByText("South")).toBeInTheDocument();
    expect(within(panel).getByText("70.25 m²")).toBeInTheDocument();
    expect(within(panel).getByText("CN¥33,519.55")).toBeInTheDocument();
    await user.click(within(panel).getByRole("button", { name: "Hold" }));
    await waitFor(() => expect(sent.some((c) => c.operationName === "HoldUnit")).toBe(true));
    expect(sent.find((c) => c.operationName === "HoldUnit")!.variables).toEqual({ input: { unitId: "u301" } });
    // Read again: held by this member, who may release it; the hold's end in the tenant's zone.
    expect(await within(panel).findByRole("button", { name: "Release" })).toBeInTheDocument();
    expect(within(panel).getByText("Jan 1, 2030, 12:30 PM")).toBeInTheDocument();
  });

  it("offers no hold to a member without unit.hold", async () => {
    gateway((call) =>
      call.operationName === "ConsoleSalesTable" ? { salesTable: table(), me: { ...ME, permissions: ["unit.read"] } } : null,
    );
    render(<App initialPath="/buildings/b1/sales-table" locale="en" />);
    await screen.findByTestId("sales-grid");
    expect(screen.queryByRole("button", { name: "Hold" })).toBeNull();
  });

  it("says so for a building that is not there", async () => {
    gateway((call) => (call.operationName === "ConsoleSalesTable" ? { salesTable: null, me: ME } : null));
    render(<App initialPath="/buildings/nope/sales-table" locale="en" />);
    expect(await screen.findByRole("alert")).toHaveTextContent("No such record");
  });
});

describe("the grid's layout", () => {
  it("finds stacks behind the floor in the number", () => {
    expect(stackOf("1201", 12)).toBe("01");
    expect(stackOf("12-3", 12)).toBe("3");
    expect(stackOf("12F05", 12)).toBe("05");
    expect(stackOf("A-101", 1)).toBe("A-101");
    expect(stackOf("12", 12)).toBe("12");
    expect(stackOf("B1-02", -1)).toBe("B1-02");
  });

  it("lists every floor from the top, with basements, and stacks in natural order", () => {
    const g = layout(
      [
        { id: "a", number: "1010", floor: 10 },
        { id: "b", number: "102", floor: 1 },
        { id: "c", number: "109", floor: 1 },
        { id: "d", number: "B1-1", floor: -1 },
      ],
      5,
    );
    expect(g.floors).toEqual([10, 9, 8, 7, 6, 5, 4, 3, 2, 1, -1]); // no floor 0
    expect(g.stacks).toEqual(["02", "09", "10", "B1-1"]);
    expect(g.cell(1, "09").map((u) => u.id)).toEqual(["c"]);
    expect(g.cell(2, "09")).toEqual([]);
  });

  it("lists only floors with units when the span is absurd", () => {
    const g = layout(
      [
        { id: "a", number: "1", floor: 1 },
        { id: "b", number: "2", floor: 100000 },
      ],
      1,
    );
    expect(g.floors).toEqual([100000, 1]);
  });
});
