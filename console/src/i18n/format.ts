import { useEffect, useMemo, useState } from "react";
import { useAuth } from "../auth/Auth";
import { ConsoleRegional } from "../gql/documents";
import { useI18n, type Locale } from "./I18n";

/** Money as the gateway sends it: an integer count of the currency's minor units. */
export interface MoneyValue {
  minorUnits: number;
  currency: string;
}

/** The currency's minor digits as Intl knows them (CNY 2, JPY 0, BHD 3). */
export function minorDigits(currency: string): number {
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    return 2;
  }
}

/** "¥1,234,567.89" from 123456789 fen. Integer arithmetic on the minor units (no float drift
 * for amounts up to 2^53), split into major and minor parts before formatting. */
export function formatMoney(money: MoneyValue | null | undefined, locale: Locale): string {
  if (!money) return "—";
  const digits = minorDigits(money.currency);
  const scale = 10 ** digits;
  const negative = money.minorUnits < 0;
  const abs = Math.abs(money.minorUnits);
  const major = Math.floor(abs / scale);
  const minor = abs - major * scale;
  let formatter: Intl.NumberFormat;
  try {
    formatter = new Intl.NumberFormat(locale, {
      style: "currency",
      currency: money.currency,
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
    });
  } catch {
    return `${money.currency} ${(money.minorUnits / scale).toFixed(digits)}`;
  }
  // Format the major part as a number of the currency, then put the exact minor digits in.
  const parts = formatter.formatToParts(negative ? -major : major);
  const fraction = String(minor).padStart(digits, "0");
  return parts.map((p) => (p.type === "fraction" ? fraction : p.value)).join("");
}

/** Minor units from what a person typed in major units ("1234.5" -> 123450 for CNY); null when
 * it is not a number with at most the currency's minor digits. */
export function parseMajor(text: string, currency: string): number | null {
  const digits = minorDigits(currency);
  const m = /^\s*(-?)(\d{1,13})(?:\.(\d+))?\s*$/.exec(text.replace(/,/g, ""));
  if (!m || (m[3] ?? "").length > digits) return null;
  const minor = Number((m[3] ?? "").padEnd(digits, "0") || "0");
  const value = Number(m[2]) * 10 ** digits + minor;
  return m[1] ? -value : value;
}

/** "89.50 m²" from a Decimal string; areas always show two decimals. */
export function formatArea(area: string | null | undefined, locale: Locale): string {
  if (area == null || area === "") return "—";
  const n = Number(area);
  if (!Number.isFinite(n)) return area;
  return `${new Intl.NumberFormat(locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(n)} m²`;
}

/** A date and time in the given IANA zone (the tenant's), as people of the locale write it. */
export function formatInZone(iso: string | null | undefined, locale: Locale, timeZone: string | undefined): string {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  try {
    return new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short", timeZone }).format(date);
  } catch {
    return new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" }).format(date);
  }
}

interface Regional {
  timeZone: string;
  currency: string;
}
const zones = new Map<string, Promise<Regional>>();

/** Formatters of the signed-in tenant: its time zone and currency are read once per tenant
 * (regionalSettings). */
export function useFormat() {
  const { locale } = useI18n();
  const { tenant, run } = useAuth();
  const [regional, setRegional] = useState<Regional | undefined>(undefined);
  useEffect(() => {
    if (!tenant) return;
    let pending = zones.get(tenant);
    if (!pending) {
      pending = run(ConsoleRegional, {}).then((r) => r.regionalSettings);
      pending.catch(() => zones.delete(tenant));
      zones.set(tenant, pending);
    }
    let live = true;
    pending.then((r) => live && setRegional(r)).catch(() => {});
    return () => {
      live = false;
    };
  }, [tenant, run]);
  const timeZone = regional?.timeZone;
  return useMemo(
    () => ({
      timeZone,
      /** The tenant's currency (CNY until it is known). */
      currency: regional?.currency ?? "CNY",
      money: (m: MoneyValue | null | undefined) => formatMoney(m, locale),
      area: (a: string | null | undefined) => formatArea(a, locale),
      dateTime: (iso: string | null | undefined) => formatInZone(iso, locale, timeZone),
    }),
    [locale, timeZone, regional?.currency],
  );
}

/** Forgets the cached zones (tests). */
export function resetZones() {
  zones.clear();
}
