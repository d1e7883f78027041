import { Alert, Button, Card, Form, Input, Select, Skeleton, Space, Typography, message } from "antd";
import { useEffect, useMemo, useState } from "react";
import { useAuth } from "../../auth/Auth";
import { errorText, userErrorText, type UserErrorData } from "../../components/errors";
import { showOnField } from "../../components/fieldErrors";
import { useQuery } from "../../components/useQuery";
import { ConsoleTenantSettings, UpdateRegionalSettings, UpdateTenantSettings } from "../../gql/documents";
import type { Translate } from "../../i18n/I18n";
import { useI18n } from "../../i18n/I18n";
import { zhCN, type MessageKey } from "../../i18n/messages";

/** A setting as the gateway declares it (api/setting/service.py's Spec). */
export interface DeclaredSetting {
  key: string;
  value: string;
  default: string;
  description: string;
  kind: string;
  min: string | null;
  max: string | null;
  choices: string[];
}

const INTEGER = /^-?\d+$/;
const DECIMAL = /^-?\d+(\.\d+)?$/;

/** Compares two numbers written in decimal (no exponent): exact, whatever their size. */
function compareDecimal(a: string, b: string): number {
  const [ai, af = ""] = a.split(".");
  const [bi, bf = ""] = b.split(".");
  const width = Math.max(af.length, bf.length);
  const scaled = (i: string, f: string) => BigInt(i + f.padEnd(width, "0"));
  const x = scaled(ai, af);
  const y = scaled(bi, bf);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Why `raw` is not a value `s` accepts (the gateway's rule, checked before sending), or null. */
export function settingProblem(s: DeclaredSetting, raw: string, t: Translate): string | null {
  const value = raw.trim();
  if (s.kind === "choice") return s.choices.includes(value) ? null : t("settings.oneOf", { choices: s.choices.join(", ") });
  if (s.kind === "int" && !INTEGER.test(value)) return t("settings.int");
  if (s.kind === "decimal" && !DECIMAL.test(value)) return t("settings.decimal");
  if ((s.min != null && compareDecimal(value, s.min) < 0) || (s.max != null && compareDecimal(value, s.max) > 0)) {
    return t("settings.range", { min: s.min ?? "", max: s.max ?? "" });
  }
  return null;
}

function label(key: string, t: Translate): string {
  const k = `setting.${key}`;
  return k in zhCN ? t(k as MessageKey) : key;
}

/** Every declared tenant setting with its description, bounds and default; the form is drawn
 * from each one's kind (a whole number, a decimal, or one of its choices). Only changed
 * values are sent; a typed error is shown beside the setting it names. And the regional
 * settings (time zone, locale, currency). */
export function SettingsPage() {
  const { t } = useI18n();
  const { run } = useAuth();
  const { data, error, loading } = useQuery(ConsoleTenantSettings, {});
  const [settings, setSettings] = useState<DeclaredSetting[]>([]);
  const [form] = Form.useForm<Record<string, string>>();
  const [regionalForm] = Form.useForm<{ timeZone: string; locale: string; currency: string }>();
  const [saveError, setSaveError] = useState<string | null>(null);
  const [regionalError, setRegionalError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [toast, holder] = message.useMessage();

  useEffect(() => {
    if (!data) return;
    setSettings(data.tenantSettings);
    form.setFieldsValue(Object.fromEntries(data.tenantSettings.map((s) => [s.key, s.value])));
    regionalForm.setFieldsValue(data.regionalSettings);
  }, [data, form, regionalForm]);

  const groups = useMemo(() => {
    const byGroup = new Map<string, DeclaredSetting[]>();
    for (const s of settings) {
      const group = s.key.split(".")[0];
      byGroup.set(group, [...(byGroup.get(group) ?? []), s]);
    }
    return [...byGroup.entries()];
  }, [settings]);

  async function save(values: Record<string, string>) {
    setSaveError(null);
    const changes = settings
      .filter((s) => values[s.key] != null && String(values[s.key]).trim() !== s.value)
      .map((s) => ({ key: s.key, value: String(values[s.key]).trim() }));
    if (changes.length === 0) {
      void toast.info(t("settings.unchanged"));
      return;
    }
    setBusy(true);
    try {
      const result = (await run(UpdateTenantSettings, { changes })).updateTenantSettings;
      if (result.__typename === "TenantSettingsPayload") {
        setSettings(result.settings);
        form.setFieldsValue(Object.fromEntries(result.settings.map((s) => [s.key, s.value])));
        void toast.success(t("settings.saved"));
      } else {
        const fields = Object.fromEntries(settings.map((s) => [s.key, s.key]));
        if (!showOnField(form, result as UserErrorData, fields, t)) setSaveError(userErrorText(result as UserErrorData, t));
      }
    } catch (err) {
      setSaveError(errorText(err, t));
    } finally {
      setBusy(false);
    }
  }

  async function saveRegional(v: { timeZone: string; locale: string; currency: string }) {
    setRegionalError(null);
    try {
      const input = { timeZone: v.timeZone.trim(), locale: v.locale, currency: v.currency.trim().toUpperCase() };
      const result = (await run(UpdateRegionalSettings, { input })).updateRegionalSettings;
      if (result.__typename === "RegionalSettings") {
        regionalForm.setFieldsValue(result);
        void toast.success(t("settings.saved"));
      } else if (
        !showOnField(regionalForm, result as UserErrorData, { timeZone: "timeZone", time_zone: "timeZone", locale: "locale", currency: "currency" }, t)
      ) {
        setRegionalError(userErrorText(result as UserErrorData, t));
      }
    } catch (err) {
      setRegionalError(errorText(err, t));
    }
  }

  if (error) return <Alert role="alert" type="error" title={errorText(error, t)} />;
  if (loading && !data) return <Skeleton active />;
  return (
    <Space direction="vertical" size="large" style={{ width: "100%" }}>
      {holder}
      <Card
        title={t("settings.title")}
        extra={
          <Button type="primary" loading={busy} onClick={() => form.submit()}>
            {t("settings.save")}
          </Button>
        }
      >
        {saveError && <Alert role="alert" type="error" title={saveError} style={{ marginBottom: 16 }} />}
        <Form form={form} layout="vertical" name="settings" onFinish={save} style={{ maxWidth: 720 }}>
          {groups.map(([group, list]) => (
            <fieldset key={group} style={{ border: "1px solid #eee", borderRadius: 6, padding: "8px 16px", marginBottom: 16 }}>
              <legend style={{ fontWeight: 600, fontSize: 14, width: "auto", margin: 0, padding: "0 4px" }}>
                {label(group, t)}
              </legend>
              {list.map((s) => (
                <Form.Item
                  key={s.key}
                  name={s.key}
                  label={label(s.key, t)}
                  extra={
                    <>
                      {s.description}
                      <br />
                      <Typography.Text type="secondary">
                        {s.kind === "choice"
                          ? t("settings.defaultOnly", { value: s.default })
                          : t("settings.bounds", { min: s.min ?? "", max: s.max ?? "", value: s.default })}
                      </Typography.Text>
                    </>
                  }
                  rules={[
                    {
                      validator: async (_, v: unknown) => {
                        const problem = settingProblem(s, v == null ? "" : String(v), t);
                        if (problem) throw new Error(problem);
                      },
                    },
                  ]}
                >
                  {s.kind === "choice" ? (
                    <Select options={s.choices.map((c) => ({ value: c, label: c }))} style={{ maxWidth: 240 }} />
                  ) : (
                    <Input inputMode={s.kind === "int" ? "numeric" : "decimal"} style={{ maxWidth: 240 }} />
                  )}
                </Form.Item>
              ))}
            </fieldset>
          ))}
        </Form>
      </Card>
      <Card
        title={t("settings.regional")}
        extra={<Button onClick={() => regionalForm.submit()}>{t("settings.save")}</Button>}
      >
        {regionalError && <Alert role="alert" type="error" title={regionalError} style={{ marginBottom: 16 }} />}
        <Form form={regionalForm} layout="vertical" name="regional" onFinish={saveRegional} style={{ maxWidth: 480 }}>
          <Form.Item
            name="timeZone"
            label={t("settings.timeZone")}
            extra={t("settings.timeZoneHelp")}
            rules={[{ required: true, whitespace: true, message: t("form.required", { field: t("settings.timeZone") }) }]}
          >
            <Input />
          </Form.Item>
          <Form.Item name="locale" label={t("settings.locale")}>
            <Select
              options={[
                { value: "zh-CN", label: "简体中文 (zh-CN)" },
                { value: "en", label: "English (en)" },
              ]}
            />
          </Form.Item>
          <Form.Item
            name="currency"
            label={t("settings.currency")}
            extra={t("settings.currencyHelp")}
            rules={[{ pattern: /^[A-Za-z]{3}$/, message: t("settings.currencyHelp") }]}
          >
            <Input maxLength={3} style={{ maxWidth: 120 }} />
          </Form.Item>
        </Form>
      </Card>
    </Space>
  );
}
