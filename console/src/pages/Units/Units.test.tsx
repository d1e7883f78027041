import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "../../App";
import { resetZones } from "../../i18n/format";
import { fakeGateway, TOKENS, type Sent } from "../../test/fetch";

beforeEach(() => {
  localStorage.setItem("anju.tenant", "acme");
  localStorage.setItem("anju.session.acme", JSON.stringify(TOKENS));
  resetZones();
});
afterEach(() => vi.unstubAllGlobals());

const REGIONAL = { regionalSettings: { timeZone: "Asia/Shanghai", locale: "zh-CN", currency: "CNY" } };
const FILTERS = {
  projects: [
    { id: "p1", name: "Riverside", buildings: [{ id: "b1", name: "1号楼" }, { id: "b2", name: "2号楼" }] },
    { id: "p2", name: "Hillside", buildings: [{ id: "b9", name: "A" }] },
  ],
};
const node = (id: string, number: string, status = "AVAILABLE") => ({
  id,
  number,
  floor: 12,
  grossArea: "89.5",
  status,
  listPrice: { minorUnits: 312345678, currency: "CNY" },
  pricePerM2: { minorUnits: 3489895, currency: "CNY" },
  building: { id: "b1", name: "1号楼" },
  project: { id: "p1", name: "Riverside" },
  unitType: null,
});

function gateway(answer: (call: Sent) => unknown) {
  return fakeGateway((call) => {
    if (call.operationName === "ConsoleRegional") return { body: { data: REGIONAL } };
    if (call.operationName === "ConsoleUnitFilters") return { body: { data: FILTERS } };
    const data = answer(call);
    return data ? { body: { data } } : { status: 400, body: { errors: [{ message: `unexpected ${call.operationName}` }] } };
  });
}

describe("units", () => {
  it("filters by project, building and status from the address and pages by cursor", async () => {
    const sent = gateway((call) => {
      if (call.operationName !== "ConsoleUnits") return null;
      const second = call.variables.after === "c20";
      return {
        units: {
          totalCount: 21,
          pageInfo: { hasNextPage: !second, endCursor: second ? "c21" : "c20" },
          edges: second ? [{ node: node("u21", "1221", "ON_HOLD") }] : [{ node: node("u1", "1201") }],
        },
      };
    });
    render(<App initialPath="/units?project=p1&building=b1&status=AVAILABLE,ON_HOLD,bogus" locale="en" />);
    const user = userEvent.setup();
    const link = await screen.findByRole("link", { name: "1201" });
    expect(link).toHaveAttribute("href", "/units/u1");
    const row = link.closest("tr")!;
    expect(within(row).getByText("89.50 m²")).toBeInTheDocument();
    expect(within(row).getByText("CN¥3,123,456.78")).toBeInTheDocument();
    expect(within(row).getByText("CN¥34,898.95")).toBeInTheDocument();
    expect(screen.getByText("21 units")).toBeInTheDocument();
    expect(screen.getByTestId("sales-table-link")).toHaveAttribute("href", "/buildings/b1/sales-table");
    const first = sent.find((c) => c.operationName === "ConsoleUnits")!;
    expect(first.variables).toEqual({
      filter: { projectIds: ["p1"], buildingIds: ["b1"], statuses: ["AVAILABLE", "ON_HOLD"] },
      first: 20,
      after: null,
    });

    await user.click(screen.getByRole("button", { name: "Next" }));
    expect(await screen.findByRole("link", { name: "1221" })).toBeInTheDocument();
    expect(screen.getByTestId("page")).toHaveTextContent("Page 2");
    expect(sent.filter((c) => c.operationName === "ConsoleUnits").at(-1)!.variables.after).toBe("c20");
    expect(screen.getByRole("button", { name: "Next" })).toBeDisabled();
    await user.click(screen.getByRole("button", { name: "Previous" }));
    expect(await screen.findByRole("link", { name: "1201" })).toBeInTheDocument();
    expect(screen.getByTestId("page")).toHaveTextContent("Page 1");
  }, 120_000);

  it("shows no filter when the address has none", async () => {
    const sent = gateway((call) =>
      call.operationName === "ConsoleUnits" ? { units: { totalCount: 0, pageInfo: { hasNextPage: false, endCursor: null }, edges: [] } } : null,
    );
    render(<App initialPath="/units" locale="zh-CN" />);
    await waitFor(() => expect(sent.some((c) => c.operationName === "ConsoleUnits")).toBe(true));
    expect(sent.find((c) => c.operationName === "ConsoleUnits")!.variables.filter).toEqual({ projectIds: null, buildingIds: null, statuses: null });
    expect(await screen.findByText("共 0 套")).toBeInTheDocument();
  }, 120_000);
});

const UNIT = {
  id: "u1",
  number: "1201",
  floor: 12,
  grossArea: "89.50",
  netArea: "70.00",
  orientation: "S",
  rooms: 3,
  status: "ON_HOLD",
  standardStatus: "HOLD",
  holdExpiresAt: "2030-01-01T04:30:00Z",
  heldBy: "acc-2",
  statusChangedAt: "2030-01-01T04:00:00Z",
  version: 3,
  tags: ["corner"],
  createdAt: "2029-12-01T00:00:00Z",
  listPrice: { minorUnits: 312345678, currency: "CNY" },
  pricePerM2: { minorUnits: 3489895, currency: "CNY" },
  project: { id: "p1", name: "Riverside" },
  building: { id: "b1", name: "1号楼" },
  unitType: { id: "t1", name: "A" },
};

describe("a unit", () => {
  it("shows its price history and timeline, newest first, and lets staff release another's hold", async () => {
    const sent = gateway((call) => {
      if (call.operationName === "ConsoleUnit") return { unit: UNIT, me: { account: { id: "acc-1" }, permissions: ["unit.read", "unit.write", "unit.history"] } };
      if (call.operationName === "ConsoleUnitHistory") {
        return {
          unit: {
            id: "u1",
            timeline: [
              { id: "e1", kind: "created", fromStatus: null, toStatus: "PLANNED", reason: "", actorId: null, at: "2029-12-01T00:00:00Z", oldPrice: null, newPrice: { minorUnits: 300000000, currency: "CNY" } },
              { id: "e2", kind: "price", fromStatus: null, toStatus: null, reason: "Q4", actorId: null, at: "2029-12-15T00:00:00Z", oldPrice: { minorUnits: 300000000, currency: "CNY" }, newPrice: { minorUnits: 312345678, currency: "CNY" } },
              { id: "e3", kind: "hold", fromStatus: "AVAILABLE", toStatus: "ON_HOLD", reason: "", actorId: "acc-2", at: "2030-01-01T04:00:00Z", oldPrice: null, newPrice: null },
            ],
          },
        };
      }
      if (call.operationName === "ReleaseUnitHold") {
        return { releaseUnitHold: { __typename: "ConflictError", code: "CONFLICT", message: "the unit is reserved now", field: "unitId" } };
      }
      return null;
    });
    render(<App initialPath="/units/u1" locale="en" />);
    const user = userEvent.setup();
    expect(await screen.findByTestId("unit-title")).toHaveTextContent("Riverside · 1号楼 · 1201");
    expect(screen.getByTestId("list-price")).toHaveTextContent("CN¥3,123,456.78");
    expect(screen.getByTestId("gross-area")).toHaveTextContent("89.50 m²");
    expect(await screen.findByText("Jan 1, 2030, 12:30 PM")).toBeInTheDocument(); // held until, Shanghai time
    const timeline = await screen.findByTestId("timeline");
    const items = within(timeline).getAllByRole("listitem");
    expect(items[0]).toHaveTextContent("Held");
    expect(items[1]).toHaveTextContent("Price change");
    expect(items[1]).toHaveTextContent("CN¥3,000,000.00 → CN¥3,123,456.78");
    expect(items[2]).toHaveTextContent("Created");
    expect(screen.getAllByText("Q4")).toHaveLength(2); // the price line and the timeline

    // Held by someone else: staff with unit.write may release it; a refusal is shown.
    await user.click(screen.getByRole("button", { name: "Release" }));
    await user.click(await screen.findByRole("button", { name: "OK" }));
    expect(await screen.findByText("the unit is reserved now")).toBeInTheDocument();
    expect(sent.find((c) => c.operationName === "ReleaseUnitHold")!.variables).toEqual({ unitId: "u1" });
  }, 120_000);

  it("keeps the unit's facts when its history is not the member's to see", async () => {
    fakeGateway((call) => {
      if (call.operationName === "ConsoleRegional") return { body: { data: REGIONAL } };
      if (call.operationName === "ConsoleUnit") return { body: { data: { unit: { ...UNIT, status: "AVAILABLE", heldBy: null }, me: { account: { id: "acc-1" }, permissions: ["unit.read"] } } } };
      return { body: { data: null, errors: [{ message: "unit.history needed", extensions: { code: "FORBIDDEN" } }] } };
    });
    render(<App initialPath="/units/u1" locale="en" />);
    expect(await screen.findByText("You may not see the unit's history")).toBeInTheDocument();
    expect(screen.getByTestId("list-price")).toHaveTextContent("CN¥3,123,456.78");
    expect(screen.queryByRole("button", { name: "Hold" })).toBeNull();
    expect(screen.queryByRole("button", { name: "Release" })).toBeNull();
  }, 120_000);
});
