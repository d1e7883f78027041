import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "../../App";
import { en } from "../../i18n/messages";
import { fakeGateway, TOKENS } from "../../test/fetch";
import { ADMIN, FIRST, LONG, viewer } from "../../test/viewer";
import { settingProblem, type DeclaredSetting } from "./Settings";

beforeEach(() => {
  localStorage.setItem("anju.tenant", "acme");
  localStorage.setItem("anju.session.acme", JSON.stringify(TOKENS));
});
afterEach(() => vi.unstubAllGlobals());

const HOLD: DeclaredSetting = {
  key: "inventory.hold_minutes",
  value: "30",
  default: "30",
  description: "How long a hold keeps a unit for an agent",
  kind: "int",
  min: "5",
  max: "10080",
  choices: [],
};
const DISCOUNT: DeclaredSetting = {
  key: "inventory.max_discount_pct",
  value: "3",
  default: "3",
  description: "A price decrease larger than this percentage waits for approval",
  kind: "decimal",
  min: "0",
  max: "100",
  choices: [],
};
const DUPLICATES: DeclaredSetting = {
  key: "crm.duplicates",
  value: "flag",
  default: "flag",
  description: "A new client with the phone of an existing one: flag, refuse or merge",
  kind: "choice",
  min: null,
  max: null,
  choices: ["flag", "refuse", "merge"],
};
const DEPOSIT: DeclaredSetting = {
  key: "payments.deposit_amount",
  value: "2000000",
  default: "2000000",
  description: "The deposit, in minor units",
  kind: "int",
  min: "100",
  max: "10000000000",
  choices: [],
};
const SETTINGS = [HOLD, DISCOUNT, DUPLICATES, DEPOSIT];
const REGIONAL = { timeZone: "Asia/Shanghai", locale: "zh-CN", currency: "CNY" };

const t = (key: keyof typeof en, params?: Record<string, string | number>) =>
  en[key].replace(/\{(\w+)\}/g, (_, name: string) => String(params?.[name]));

describe("the rule of a declared setting", () => {
  it("checks kind and bounds exactly, whatever the size", () => {
    expect(settingProblem(HOLD, "30", t)).toBeNull();
    expect(settingProblem(HOLD, " 5 ", t)).toBeNull();
    expect(settingProblem(HOLD, "4", t)).toBe("Between 5 and 10080");
    expect(settingProblem(HOLD, "-30", t)).toBe("Between 5 and 10080");
    expect(settingProblem(HOLD, "7.5", t)).toBe("A whole number");
    expect(settingProblem(HOLD, "1e3", t)).toBe("A whole number");
    expect(settingProblem(HOLD, "", t)).toBe("A whole number");
    expect(settingProblem(HOLD, "30\u0000", t)).toBe("A whole number");
    expect(settingProblem(DEPOSIT, "10000000000", t)).toBeNull();
    expect(settingProblem(DEPOSIT, "10000000001", t)).toBe("Between 100 and 10000000000");
    expect(settingProblem(DEPOSIT, "99999999999999999999999999", t)).toBe("Between 100 and 10000000000");
    expect(settingProblem(DISCOUNT, "2.75", t)).toBeNull();
    expect(settingProblem(DISCOUNT, "100.01", t)).toBe("Between 0 and 100");
    expect(settingProblem(DISCOUNT, "-0.5", t)).toBe("Between 0 and 100");
    expect(settingProblem(DISCOUNT, "abc", t)).toBe("A number");
    expect(settingProblem(DUPLICATES, "merge", t)).toBeNull();
    expect(settingProblem(DUPLICATES, "Merge", t)).toBe("One of flag, refuse, merge");
  }, LONG);
});

describe("tenant settings page", () => {
  it("shows every setting with its description and bounds, checks before sending, and sends only the changes", async () => {
    const sent = fakeGateway((call) => {
      if (call.operationName === "ConsoleViewer") return { body: { data: viewer(ADMIN) } };
      if (call.operationName === "ConsoleTenantSettings") return { body: { data: { tenantSettings: SETTINGS, regionalSettings: REGIONAL } } };
      const changes = call.variables.changes as { key: string; value: string }[];
      return {
        body: {
          data: {
            updateTenantSettings: {
              __typename: "TenantSettingsPayload",
              settings: SETTINGS.map((s) => ({ ...s, value: changes.find((c) => c.key === s.key)?.value ?? s.value })),
            },
          },
        },
      };
    });
    render(<App initialPath="/settings" locale="en" />);
    const user = userEvent.setup();
    const hold = await screen.findByLabelText("Hold time (minutes)", {}, FIRST);
    expect(hold).toHaveValue("30");
    for (const s of SETTINGS) expect(screen.getByText(s.description)).toBeInTheDocument();
    expect(screen.getByText("5 to 10080, default 30")).toBeInTheDocument();
    expect(screen.getByText("Default flag")).toBeInTheDocument();
    expect(screen.getByLabelText("Deposit (minor units)")).toHaveValue("2000000");

    await user.clear(hold);
    await user.paste("4");
    await user.clear(screen.getByLabelText("Price decrease without approval (%)"));
    await user.paste("2.5");
    await user.click(screen.getAllByRole("button", { name: "Save" })[0]);
    expect(await screen.findByText("Between 5 and 10080", { selector: ".ant-form-item-explain-error" })).toBeInTheDocument();
    expect(sent.some((c) => c.operationName === "UpdateTenantSettings")).toBe(false);

    await user.clear(hold);
    await user.paste("45");
    await user.click(screen.getAllByRole("button", { name: "Save" })[0]);
    await waitFor(() => expect(sent.some((c) => c.operationName === "UpdateTenantSettings")).toBe(true));
    expect(sent.find((c) => c.operationName === "UpdateTenantSettings")!.variables.changes).toEqual([
      { key: "inventory.hold_minutes", value: "45" },
      { key: "inventory.max_discount_pct", value: "2.5" },
    ]);
    expect(await screen.findByText("Settings saved")).toBeInTheDocument();
  }, LONG);

  it("shows the gateway's typed error beside the setting it names", async () => {
    fakeGateway((call) => {
      if (call.operationName === "ConsoleViewer") return { body: { data: viewer(ADMIN) } };
      if (call.operationName === "ConsoleTenantSettings") return { body: { data: { tenantSettings: SETTINGS, regionalSettings: REGIONAL } } };
      return {
        body: {
          data: {
            updateTenantSettings: {
              __typename: "ValidationError",
              code: "BAD_USER_INPUT",
              message: "payments.deposit_amount must be between 100 and 10000000000",
              field: "payments.deposit_amount",
            },
          },
        },
      };
    });
    render(<App initialPath="/settings" locale="en" />);
    const user = userEvent.setup();
    const deposit = await screen.findByLabelText("Deposit (minor units)", {}, FIRST);
    await user.clear(deposit);
    await user.paste("500");
    await user.click(screen.getAllByRole("button", { name: "Save" })[0]);
    const item = deposit.closest(".ant-form-item") as HTMLElement;
    expect(await within(item).findByText("payments.deposit_amount must be between 100 and 10000000000")).toBeInTheDocument();
    expect(document.querySelector(".ant-alert")).toBeNull(); // not above the form
  }, LONG);
});
