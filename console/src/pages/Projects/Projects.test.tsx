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

/** The open modal (a role query would walk the whole page). */
async function modal(): Promise<HTMLElement> {
  await waitFor(() => expect(document.querySelector("[role=dialog]")).not.toBeNull());
  return document.querySelector("[role=dialog]") as HTMLElement;
}

/** A tab by its label (the active pane's card may carry the same title). */
async function tab(name: string): Promise<HTMLElement> {
  const find = () => [...document.querySelectorAll(".ant-tabs-tab-btn")].find((e) => e.textContent === name);
  await waitFor(() => expect(find()).toBeDefined());
  return find() as HTMLElement;
}

const REGIONAL = { regionalSettings: { timeZone: "Asia/Shanghai", locale: "zh-CN", currency: "CNY" } };
const PROJECT = {
  id: "p1",
  name: "Riverside",
  city: "Shanghai",
  district: "Pudong",
  address: "1 River Rd",
  createdAt: "2030-01-01T17:00:00Z",
  buildings: [{ id: "b1" }, { id: "b2" }],
  unitTypes: [{ id: "t1" }],
};

function gateway(answer: (call: Sent) => unknown) {
  return fakeGateway((call) => {
    if (call.operationName === "ConsoleRegional") return { body: { data: REGIONAL } };
    const data = answer(call);
    return data ? { body: { data } } : { status: 400, body: { errors: [{ message: `unexpected ${call.operationName}` }] } };
  });
}

describe("projects", () => {
  it("lists projects with counts and dates in the tenant's zone", async () => {
    gateway((call) => (call.operationName === "ConsoleProjects" ? { projects: [PROJECT] } : null));
    render(<App initialPath="/projects" locale="en" />);
    const link = await screen.findByRole("link", { name: "Riverside" });
    expect(link).toHaveAttribute("href", "/projects/p1");
    const row = link.closest("tr")!;
    expect(within(row).getByText("2")).toBeInTheDocument();
    // 17:00 UTC is the next morning in Shanghai.
    expect(await within(row).findByText("Jan 2, 2030, 1:00 AM")).toBeInTheDocument();
  }, 300_000);

  it("creates a project, checking name and coordinates first and showing a typed error on its field", async () => {
    let created = 0;
    const sent = gateway((call) => {
      if (call.operationName === "ConsoleProjects") return { projects: created ? [PROJECT] : [] };
      if (call.operationName === "CreateProject") {
        created += 1;
        if (created === 1) {
          return { createProject: { __typename: "ValidationError", code: "BAD_USER_INPUT", message: "name is too long", field: "name" } };
        }
        return { createProject: { __typename: "ProjectPayload", project: PROJECT } };
      }
      return null;
    });
    render(<App initialPath="/projects" locale="en" />);
    const user = userEvent.setup();
    await user.click(await screen.findByText("New project"));
    const dialog = await modal();
    await user.click(within(dialog).getByLabelText("Latitude"));
    await user.paste("north");
    await user.click(within(dialog).getByText("Save"));
    expect(await within(dialog).findByText("Name is required")).toBeInTheDocument();
    expect(within(dialog).getByText("Latitude is not a valid number")).toBeInTheDocument();
    expect(sent.some((c) => c.operationName === "CreateProject")).toBe(false);

    await user.click(within(dialog).getByLabelText("Name"));
    await user.paste("  Riverside ");
    await user.clear(within(dialog).getByLabelText("Latitude"));
    await user.click(within(dialog).getByLabelText("Latitude"));
    await user.paste("31.2304");
    await user.click(within(dialog).getByLabelText("City"));
    await user.paste("Shanghai");
    await user.click(within(dialog).getByText("Save"));
    expect(await within(dialog).findByText("name is too long")).toBeInTheDocument();
    const create = sent.find((c) => c.operationName === "CreateProject")!;
    expect(create.variables.input).toEqual({
      name: "Riverside",
      city: "Shanghai",
      district: "",
      address: "",
      latitude: "31.2304",
      longitude: null,
      facilities: [],
      surroundings: "",
    });

    await user.click(within(dialog).getByText("Save"));
    expect(await screen.findByRole("link", { name: "Riverside" })).toBeInTheDocument();
  }, 300_000);
});

const DETAIL = {
  project: {
    ...PROJECT,
    latitude: null,
    longitude: null,
    facilities: ["school"],
    surroundings: "",
    buildings: [{ id: "b1", name: "1号楼", floors: 18, createdAt: "2030-01-01T00:00:00Z" }],
    unitTypes: [
      { id: "t1", name: "A", rooms: 3, livingRooms: 2, bathrooms: 2, grossArea: "120.5", netArea: null, orientation: "NS", layout: "" },
    ],
  },
  me: { permissions: ["project.read", "project.write", "unit.read", "unit.write", "unit.price.adjust", "unit.price.approve"] },
};

const ADJUSTMENT = {
  id: "adj1",
  status: "pending_approval",
  reason: "Q4",
  rule: { percent: "-5", floor_min: 10, floor_max: 20 },
  unitCount: 2,
  maxDiscountPct: "5.00",
  requestedBy: "acc-2",
  decidedBy: null,
  decisionNote: "",
  createdAt: "2030-01-01T00:00:00Z",
  lines: [{ unitId: "u1", oldPrice: 300000000, newPrice: 285000000 }],
};

describe("a project", () => {
  it("shows buildings with their sales table, unit types with areas, and creates a building", async () => {
    const sent = gateway((call) => {
      if (call.operationName === "ConsoleProject") return DETAIL;
      if (call.operationName === "ConsolePriceAdjustments") return { priceAdjustments: [] };
      if (call.operationName === "CreateBuilding") {
        return { createBuilding: { __typename: "BuildingPayload", building: { id: "b2", name: "2号楼", floors: 30, createdAt: "2030-01-01T00:00:00Z" } } };
      }
      return null;
    });
    render(<App initialPath="/projects/p1" locale="en" />);
    const user = userEvent.setup();
    expect(await screen.findByRole("link", { name: "Sales table" })).toHaveAttribute("href", "/buildings/b1/sales-table");
    await user.click(await tab("Unit types"));
    expect(await screen.findByText("120.50 m²")).toBeInTheDocument();
    expect(screen.getByText("North-south through")).toBeInTheDocument();
    expect(screen.getByText("3 bed, 2 living, 2 bath")).toBeInTheDocument();

    await user.click(await tab("Buildings"));
    await user.click(screen.getByText("New building"));
    const dialog = await modal();
    await user.click(within(dialog).getByLabelText("Name"));
    await user.paste("2号楼");
    await user.click(within(dialog).getByLabelText("Floors"));
    await user.paste("30");
    await user.click(within(dialog).getByText("Save"));
    await waitFor(() => expect(sent.some((c) => c.operationName === "CreateBuilding")).toBe(true));
    expect(sent.find((c) => c.operationName === "CreateBuilding")!.variables.input).toEqual({ projectId: "p1", name: "2号楼", floors: 30 });
  }, 300_000);

  it("lists price adjustments with their rule and approves a pending one", async () => {
    let decided = false;
    const sent = gateway((call) => {
      if (call.operationName === "ConsoleProject") return DETAIL;
      if (call.operationName === "ConsolePriceAdjustments") {
        return { priceAdjustments: [decided ? { ...ADJUSTMENT, status: "applied", decidedBy: "acc-1" } : ADJUSTMENT] };
      }
      if (call.operationName === "DecidePriceAdjustment") {
        decided = true;
        return { decidePriceAdjustment: { __typename: "PriceAdjustmentPayload", adjustment: { id: "adj1", status: "applied", decisionNote: "" } } };
      }
      return null;
    });
    render(<App initialPath="/projects/p1" locale="en" />);
    const user = userEvent.setup();
    await user.click(await tab("Price adjustments"));
    expect(await screen.findByText("-5% · floors 10-20")).toBeInTheDocument();
    expect(screen.getByText("Awaiting approval")).toBeInTheDocument();
    await user.click(screen.getByText("Approve"));
    await user.click(await screen.findByText("OK"));
    expect(await screen.findByText("Applied")).toBeInTheDocument();
    expect(sent.find((c) => c.operationName === "DecidePriceAdjustment")!.variables).toEqual({ input: { id: "adj1", approve: true, note: "" } });
  }, 300_000);

  it("sends a price adjustment in minor units and says when it waits for approval", async () => {
    const sent = gateway((call) => {
      if (call.operationName === "ConsoleProject") return DETAIL;
      if (call.operationName === "ConsolePriceAdjustments") return { priceAdjustments: [] };
      if (call.operationName === "AdjustPrices") {
        return { adjustPrices: { __typename: "PriceAdjustmentPayload", adjustment: { id: "adj2", status: "pending_approval", unitCount: 7 } } };
      }
      return null;
    });
    render(<App initialPath="/projects/p1" locale="en" />);
    const user = userEvent.setup();
    await user.click(await tab("Price adjustments"));
    await user.click(await screen.findByText("New adjustment"));
    const dialog = await modal();
    await user.click(within(dialog).getByLabelText("Amount"));
    await user.click(within(dialog).getByLabelText("Value (CNY)"));
    await user.paste("-20000.005");
    await user.click(within(dialog).getByLabelText("Reason"));
    await user.paste("clearance");
    await user.click(within(dialog).getByText("Save"));
    expect(await within(dialog).findByText("Value is not a valid number")).toBeInTheDocument();
    await user.clear(within(dialog).getByLabelText("Value (CNY)"));
    await user.click(within(dialog).getByLabelText("Value (CNY)"));
    await user.paste("-20000.50");
    await user.click(within(dialog).getByText("Save"));
    expect(await screen.findByText(/the change of 7 units awaits approval/)).toBeInTheDocument();
    expect(sent.find((c) => c.operationName === "AdjustPrices")!.variables.input).toEqual({
      projectId: "p1",
      reason: "clearance",
      buildingIds: null,
      unitTypeIds: null,
      floorMin: null,
      floorMax: null,
      amount: -2000050,
    });
  }, 300_000);

  it("uploads a unit import by trusted id as a multipart request and shows the refused rows", async () => {
    const uploads: { operations: unknown; map: unknown; file: File; headers: Record<string, string> }[] = [];
    const json = (data: unknown) => new Response(JSON.stringify({ data }), { headers: { "content-type": "application/json" } });
    vi.stubGlobal(
      "fetch",
      vi.fn(async (_url: string, init: RequestInit) => {
        if (init.body instanceof FormData) {
          uploads.push({
            operations: JSON.parse(String(init.body.get("operations"))),
            map: JSON.parse(String(init.body.get("map"))),
            file: init.body.get("0") as File,
            headers: init.headers as Record<string, string>,
          });
          return json({
            importUnits: {
              __typename: "ImportReport",
              batchId: "batch1",
              rowsTotal: 3,
              imported: 1,
              skipped: 1,
              failed: 1,
              errors: [{ row: 4, field: "floor", message: "not a whole number" }],
            },
          });
        }
        const body = JSON.parse(String(init.body));
        if (body.operationName === "ConsoleRegional") return json(REGIONAL);
        if (body.operationName === "ConsoleProject") return json(DETAIL);
        return json({ priceAdjustments: [] });
      }),
    );
    render(<App initialPath="/projects/p1" locale="en" />);
    const user = userEvent.setup();
    await user.click(await tab("Import units"));
    const input = document.querySelector("input[type=file]") as HTMLInputElement;
    await user.upload(input, new File(["楼栋,楼层,房号\n1号楼,x,101\n"], "units.csv", { type: "text/csv" }));
    await user.click(screen.getByText("Import"));
    const report = await screen.findByTestId("import-report");
    expect(within(report).getByText("not a whole number")).toBeInTheDocument();
    expect(uploads).toHaveLength(1);
    const { ImportUnits } = await import("../../gql/documents");
    expect(uploads[0].operations).toEqual({ documentId: ImportUnits.id, operationName: "ImportUnits", variables: { projectId: "p1", file: null } });
    expect(uploads[0].map).toEqual({ 0: ["variables.file"] });
    expect(uploads[0].file.name).toBe("units.csv");
    expect(uploads[0].headers["x-tenant"]).toBe("acme");
    expect(uploads[0].headers.authorization).toBe("Bearer access-1");
  }, 300_000);
});
