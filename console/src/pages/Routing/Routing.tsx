import {
  Alert,
  Button,
  Card,
  Drawer,
  Form,
  Input,
  InputNumber,
  Popconfirm,
  Radio,
  Select,
  Space,
  Switch,
  Table,
  Tag,
  message,
} from "antd";
import { useState } from "react";
import { useAuth } from "../../auth/Auth";
import { errorText, userErrorText, type UserErrorData } from "../../components/errors";
import { showOnField } from "../../components/fieldErrors";
import { useQuery } from "../../components/useQuery";
import { ConsoleLeadRoutes, CreateLeadRoute, DeleteLeadRoute, UpdateLeadRoute } from "../../gql/documents";
import type { ClientSource, RouteMode } from "../../gql/types";
import { useI18n } from "../../i18n/I18n";

export const SOURCES: ClientSource[] = ["WALK_IN", "PHONE", "PORTAL", "REFERRAL", "CAMPAIGN", "EVENT", "OTHER"];
/** The languages a rule can match (api/client/service.py LANGUAGES). */
export const LANGUAGES = ["zh", "en", "yue", "ja", "ko", "fr", "de", "es", "ru", "ar"];
const MAX_FALLBACKS = 5;

interface RouteValues {
  name: string;
  target: "team" | "agent";
  teamId?: string;
  agentId?: string;
  mode: RouteMode;
  claimMinutes: number;
  position: number;
  active: boolean;
  sources: ClientSource[];
  districts: string[];
  languages: string[];
  budgetMin?: number | null;
  budgetMax?: number | null;
  fallbackTeamIds: string[];
}

// The gateway's field names (LeadRouteInput) are the form's.
const FIELDS: Record<string, string> = Object.fromEntries(
  ["name", "teamId", "agentId", "mode", "claimMinutes", "position", "sources", "districts", "languages", "budgetMin", "budgetMax", "fallbackTeamIds"].map((f) => [f, f]),
);

const NEW: RouteValues = {
  name: "",
  target: "team",
  mode: "ROUND_ROBIN",
  claimMinutes: 15,
  position: 0,
  active: true,
  sources: [],
  districts: [],
  languages: [],
  budgetMin: null,
  budgetMax: null,
  fallbackTeamIds: [],
};

/** The lead routing rules in the order they are tried: conditions (sources, districts,
 * languages, budget), the target (a team round-robin or to claim, or one agent) and the
 * fallback teams. Editing sends the version read, so a rule changed meanwhile is refused. */
export function RoutingPage() {
  const { t } = useI18n();
  const { run } = useAuth();
  const { data, error, loading, reload } = useQuery(ConsoleLeadRoutes, {});
  const [editing, setEditing] = useState<{ id: string; version: number } | "new" | null>(null);
  const [saveError, setSaveError] = useState<string | null>(null);
  const [form] = Form.useForm<RouteValues>();
  const target = Form.useWatch("target", form);
  const mode = Form.useWatch("mode", form);
  const [toast, holder] = message.useMessage();

  const teams = (data?.teams ?? []).filter((x) => x.kind === "team");
  const teamName = new Map((data?.teams ?? []).map((x) => [x.id, x.name]));
  const agentName = new Map((data?.members ?? []).map((m) => [m.account.id, m.account.name]));

  function open(route: NonNullable<typeof data>["leadRoutes"][number] | "new") {
    setSaveError(null);
    form.resetFields();
    if (route === "new") {
      setEditing("new");
      form.setFieldsValue({ ...NEW, position: (data?.leadRoutes.length ?? 0) * 10 });
      return;
    }
    setEditing({ id: route.id, version: route.version });
    form.setFieldsValue({
      name: route.name,
      target: route.agentId ? "agent" : "team",
      teamId: route.teamId ?? undefined,
      agentId: route.agentId ?? undefined,
      mode: route.mode,
      claimMinutes: route.claimMinutes,
      position: route.position,
      active: route.active,
      sources: [...route.sources],
      districts: [...route.districts],
      languages: [...route.languages],
      budgetMin: route.budgetMin,
      budgetMax: route.budgetMax,
      fallbackTeamIds: [...route.fallbackTeamIds],
    });
  }

  async function save(v: RouteValues) {
    setSaveError(null);
    const toTeam = v.target === "team";
    const input = {
      name: v.name.trim(),
      teamId: toTeam ? (v.teamId ?? null) : null,
      agentId: toTeam ? null : (v.agentId ?? null),
      mode: toTeam ? v.mode : ("ROUND_ROBIN" as RouteMode),
      // Kept as read when the field is hidden (not a claim rule): the store still has it.
      claimMinutes: v.claimMinutes ?? (form.getFieldValue("claimMinutes") as number | undefined) ?? NEW.claimMinutes,
      position: v.position,
      active: v.active,
      sources: v.sources,
      districts: v.districts.map((d) => d.trim()).filter(Boolean),
      languages: v.languages,
      budgetMin: v.budgetMin ?? null,
      budgetMax: v.budgetMax ?? null,
      fallbackTeamIds: v.fallbackTeamIds,
    };
    try {
      const result =
        editing === "new" || editing === null
          ? (await run(CreateLeadRoute, { input })).createLeadRoute
          : (await run(UpdateLeadRoute, { id: editing.id, input, expectedVersion: editing.version })).updateLeadRoute;
      if (result.__typename === "LeadRoutePayload") {
        setEditing(null);
        void toast.success(t("routing.saved"));
        await reload();
      } else if (!showOnField(form, result as UserErrorData, FIELDS, t)) {
        setSaveError(userErrorText(result as UserErrorData, t));
      }
    } catch (err) {
      setSaveError(errorText(err, t));
    }
  }

  async function remove(id: string) {
    try {
      await run(DeleteLeadRoute, { id });
      await reload();
    } catch (err) {
      void toast.error(errorText(err, t));
    }
  }

  const any = <span style={{ color: "#999" }}>{t("routing.any")}</span>;
  return (
    <Card title={t("routing.title")} extra={<Button type="primary" onClick={() => open("new")}>{t("routing.create")}</Button>}>
      {holder}
      {error != null && <Alert role="alert" type="error" title={errorText(error, t)} style={{ marginBottom: 16 }} />}
      <Table
        rowKey="id"
        loading={loading}
        dataSource={data?.leadRoutes ?? []}
        pagination={false}
        columns={[
          { title: t("routing.position"), dataIndex: "position", width: 80 },
          {
            title: t("routing.name"),
            render: (_, r) => (
              <>
                {r.name} {!r.active && <Tag>{t("routing.inactive")}</Tag>}
              </>
            ),
          },
          {
            title: t("routing.conditions"),
            render: (_, r) => {
              const parts = [
                ...r.sources.map((s) => t(`routing.source.${s}`)),
                ...r.districts,
                ...r.languages,
                ...(r.budgetMin != null || r.budgetMax != null ? [`${r.budgetMin ?? "…"} – ${r.budgetMax ?? "…"}`] : []),
              ];
              return parts.length ? parts.map((p) => <Tag key={p}>{p}</Tag>) : any;
            },
          },
          {
            title: t("routing.target"),
            render: (_, r) =>
              r.agentId
                ? `${t("routing.targetAgent")}: ${agentName.get(r.agentId) ?? r.agentId}`
                : `${teamName.get(r.teamId ?? "") ?? r.teamId} · ${t(`routing.mode.${r.mode}`)}${r.mode === "CLAIM" ? ` (${t("routing.minutes", { minutes: r.claimMinutes })})` : ""}`,
          },
          {
            title: t("routing.fallbacks"),
            render: (_, r) => r.fallbackTeamIds.map((id) => <Tag key={id}>{teamName.get(id) ?? id}</Tag>),
          },
          {
            key: "actions",
            render: (_, r) => (
              <Space>
                <Button size="small" aria-label={`${t("routing.edit")}: ${r.name}`} onClick={() => open(r)}>
                  {t("routing.edit")}
                </Button>
                <Popconfirm title={t("routing.deleteConfirm")} onConfirm={() => remove(r.id)}>
                  <Button size="small" danger aria-label={`${t("routing.delete")}: ${r.name}`}>
                    {t("routing.delete")}
                  </Button>
                </Popconfirm>
              </Space>
            ),
          },
        ]}
      />
      <Drawer
        open={editing !== null}
        size="large"
        title={editing === "new" ? t("routing.create") : t("routing.edit")}
        onClose={() => setEditing(null)}
        extra={
          <Button type="primary" onClick={() => form.submit()}>
            {t("routing.save")}
          </Button>
        }
      >
        {saveError && <Alert role="alert" type="error" title={saveError} style={{ marginBottom: 16 }} />}
        <Form form={form} layout="vertical" name="route" onFinish={save} initialValues={NEW}>
          <Form.Item
            name="name"
            label={t("routing.name")}
            rules={[
              { required: true, whitespace: true, message: t("form.required", { field: t("routing.name") }) },
              { max: 100, message: t("form.maxLength", { field: t("routing.name"), max: 100 }) },
            ]}
          >
            <Input />
          </Form.Item>
          <Space size="large" wrap>
            <Form.Item name="position" label={t("routing.position")} extra={t("routing.positionHelp")}>
              <InputNumber precision={0} />
            </Form.Item>
            <Form.Item name="active" label={t("routing.active")} valuePropName="checked">
              <Switch />
            </Form.Item>
          </Space>
          <Form.Item name="sources" label={t("routing.sources")} extra={t("routing.emptyMatchesAll")}>
            <Select mode="multiple" options={SOURCES.map((s) => ({ value: s, label: t(`routing.source.${s}`) }))} />
          </Form.Item>
          <Form.Item
            name="districts"
            label={t("routing.districts")}
            extra={t("routing.districtsHelp")}
            rules={[{ type: "array", max: 50, message: t("routing.tooMany", { max: 50 }) }]}
          >
            <Select mode="tags" open={false} tokenSeparators={[",", "，"]} />
          </Form.Item>
          <Form.Item name="languages" label={t("routing.languages")} extra={t("routing.emptyMatchesAll")}>
            <Select mode="multiple" options={LANGUAGES.map((l) => ({ value: l, label: l }))} />
          </Form.Item>
          <Space size="large" wrap>
            <Form.Item name="budgetMin" label={t("routing.budgetMin")} extra={t("routing.budgetHelp")} rules={[{ type: "number", min: 0, message: t("routing.budgetNegative") }]}>
              <InputNumber precision={0} style={{ width: 200 }} />
            </Form.Item>
            <Form.Item
              name="budgetMax"
              label={t("routing.budgetMax")}
              dependencies={["budgetMin"]}
              rules={[
                { type: "number", min: 0, message: t("routing.budgetNegative") },
                ({ getFieldValue }) => ({
                  validator: async (_, v: number | null | undefined) => {
                    const low = getFieldValue("budgetMin") as number | null | undefined;
                    if (v != null && low != null && low > v) throw new Error(t("routing.budgetOrder"));
                  },
                }),
              ]}
            >
              <InputNumber precision={0} style={{ width: 200 }} />
            </Form.Item>
          </Space>
          <Form.Item name="target" label={t("routing.target")}>
            <Radio.Group
              options={[
                { value: "team", label: t("routing.targetTeam") },
                { value: "agent", label: t("routing.targetAgent") },
              ]}
            />
          </Form.Item>
          {target === "agent" ? (
            <Form.Item name="agentId" label={t("routing.agent")} rules={[{ required: true, message: t("form.required", { field: t("routing.agent") }) }]}>
              <Select
                showSearch
                optionFilterProp="label"
                options={(data?.members ?? []).filter((m) => m.status === "active").map((m) => ({ value: m.account.id, label: m.account.name }))}
              />
            </Form.Item>
          ) : (
            <>
              <Form.Item name="teamId" label={t("routing.team")} rules={[{ required: true, message: t("form.required", { field: t("routing.team") }) }]}>
                <Select showSearch optionFilterProp="label" options={teams.map((x) => ({ value: x.id, label: x.name }))} />
              </Form.Item>
              <Form.Item name="mode" label={t("routing.mode")}>
                <Radio.Group
                  options={(["ROUND_ROBIN", "CLAIM"] as const).map((m) => ({ value: m, label: t(`routing.mode.${m}`) }))}
                />
              </Form.Item>
            </>
          )}
          {target !== "agent" && mode === "CLAIM" && (
            <Form.Item
              name="claimMinutes"
              label={t("routing.claimMinutes")}
              extra={t("routing.claimHelp")}
              rules={[{ type: "number", min: 1, max: 1440, required: true, message: t("routing.claimRange") }]}
            >
              <InputNumber precision={0} />
            </Form.Item>
          )}
          <Form.Item
            name="fallbackTeamIds"
            label={t("routing.fallbacks")}
            extra={t("routing.fallbacksHelp")}
            dependencies={["teamId", "target"]}
            rules={[
              { type: "array", max: MAX_FALLBACKS, message: t("routing.tooMany", { max: MAX_FALLBACKS }) },
              ({ getFieldValue }) => ({
                validator: async (_, v: string[] | undefined) => {
                  if (getFieldValue("target") === "team" && v?.includes(getFieldValue("teamId") as string)) {
                    throw new Error(t("routing.ownFallback"));
                  }
                },
              }),
            ]}
          >
            <Select mode="multiple" options={teams.map((x) => ({ value: x.id, label: x.name }))} />
          </Form.Item>
        </Form>
      </Drawer>
    </Card>
  );
}
