import { describe, expect, it } from "vitest";
import { formatArea, formatInZone as inZone, formatMoney as money, minorDigits, parseMajor } from "./format";

// ICU releases differ in the spaces they put (U+00A0, U+202F): compare with plain ones.
const plain = (s: string) => s.replace(/[\u00a0\u202f]/g, " ");
const formatMoney = (...args: Parameters<typeof money>) => plain(money(...args));
const formatInZone = (...args: Parameters<typeof inZone>) => plain(inZone(...args));

describe("money from minor units", () => {
  it("formats by locale with the currency's minor digits", () => {
    expect(formatMoney({ minorUnits: 123456789, currency: "CNY" }, "zh-CN")).toBe("¥1,234,567.89");
    expect(formatMoney({ minorUnits: 123456789, currency: "CNY" }, "en")).toBe("CN¥1,234,567.89");
    expect(formatMoney({ minorUnits: 5, currency: "CNY" }, "en")).toBe("CN¥0.05");
    expect(formatMoney({ minorUnits: 1500, currency: "JPY" }, "en")).toBe("¥1,500");
    expect(formatMoney({ minorUnits: 1234, currency: "BHD" }, "en")).toBe("BHD 1.234");
    expect(minorDigits("JPY")).toBe(0);
  });

  it("keeps every digit of large and negative amounts", () => {
    // 2^53 - 1 fen: a float division would round the last digits.
    expect(formatMoney({ minorUnits: 9007199254740991, currency: "CNY" }, "en")).toBe("CN¥90,071,992,547,409.91");
    expect(formatMoney({ minorUnits: -250, currency: "CNY" }, "en")).toBe("-CN¥2.50");
    expect(formatMoney({ minorUnits: -5, currency: "CNY" }, "en")).toBe("-CN¥0.05");
  });

  it("shows a dash for no price and survives an unknown currency code", () => {
    expect(formatMoney(null, "en")).toBe("—");
    expect(formatMoney({ minorUnits: 100, currency: "??" }, "en")).toBe("?? 1.00");
  });

  it("reads typed major units back into minor units, refusing what is not money", () => {
    expect(parseMajor("1234.5", "CNY")).toBe(123450);
    expect(parseMajor("1,000,000", "CNY")).toBe(100000000);
    expect(parseMajor("-20", "CNY")).toBe(-2000);
    expect(parseMajor("1500", "JPY")).toBe(1500);
    expect(parseMajor("1.005", "CNY")).toBeNull();
    expect(parseMajor("1.5", "JPY")).toBeNull();
    expect(parseMajor("abc", "CNY")).toBeNull();
    expect(parseMajor("1e9", "CNY")).toBeNull();
    expect(parseMajor("99999999999999", "CNY")).toBeNull();
  });
});

describe("areas and dates", () => {
  it("shows areas in m² with two decimals", () => {
    expect(formatArea("89.5", "en")).toBe("89.50 m²");
    expect(formatArea("12345.67", "zh-CN")).toBe("12,345.67 m²");
    expect(formatArea(null, "en")).toBe("—");
  });

  it("shows times in the tenant's zone, not the browser's", () => {
    const iso = "2030-06-30T20:30:00Z";
    expect(formatInZone(iso, "en", "Asia/Shanghai")).toBe("Jul 1, 2030, 4:30 AM");
    expect(formatInZone(iso, "en", "America/New_York")).toBe("Jun 30, 2030, 4:30 PM");
    expect(formatInZone(iso, "zh-CN", "Asia/Shanghai")).toBe("2030年7月1日 04:30");
    // A zone Intl does not know falls back to the browser's rather than failing the page.
    expect(formatInZone(iso, "en", "Mars/Olympus")).not.toBe("");
    expect(formatInZone("not a date", "en", "Asia/Shanghai")).toBe("not a date");
  });
});
