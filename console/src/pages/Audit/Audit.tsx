import { Alert, Button, Card, DatePicker, Form, Input, Select, Space, Table, Tag, Typography } from "antd";
import type { Dayjs } from "dayjs";
import { useCallback, useEffect, useState } from "react";
import { useAuth } from "../../auth/Auth";
import { errorText } from "../../components/errors";
import { useQuery } from "../../components/useQuery";
import { ConsoleAuditActors, ConsoleAuditLog } from "../../gql/documents";
import type { AuditFilter, ConsoleAuditLogQuery } from "../../gql/types";
import { useI18n } from "../../i18n/I18n";

export const PAGE = 50;

type Entry = ConsoleAuditLogQuery["auditLog"][number];

interface FilterValues {
  actorId?: string;
  action?: string;
  targetType?: string;
  range?: [Dayjs | null, Dayjs | null] | null;
}

/** The filter as the gateway takes it: the range's end is exclusive, so a range picked to the
 * minute ends a minute after its last one. */
export function toFilter(v: FilterValues): AuditFilter {
  const [since, until] = v.range ?? [null, null];
  return {
    actorId: v.actorId || null,
    action: v.action?.trim() || null,
    targetType: v.targetType?.trim() || null,
    since: since ? since.startOf("minute").toISOString() : null,
    until: until ? until.startOf("minute").add(1, "minute").toISOString() : null,
  };
}

/** The audit log, newest first, 50 at a time: filtered by actor, action, target type and a
 * time range; an entry's details open below it. */
export function AuditPage({ pageSize = PAGE }: { pageSize?: number }) {
  const { t, formatDateTime } = useI18n();
  const { run } = useAuth();
  const actors = useQuery(ConsoleAuditActors, {});
  const [form] = Form.useForm<FilterValues>();
  const [filter, setFilter] = useState<AuditFilter>({});
  const [entries, setEntries] = useState<Entry[]>([]);
  const [more, setMore] = useState(false);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>(null);

  const load = useCallback(
    async (f: AuditFilter, before: number | null) => {
      setLoading(true);
      try {
        const page = (await run(ConsoleAuditLog, { filter: f, first: pageSize, before })).auditLog;
        setEntries((previous) => (before == null ? page : [...previous, ...page]));
        setMore(page.length === pageSize);
        setError(null);
      } catch (err) {
        setError(err);
      } finally {
        setLoading(false);
      }
    },
    [run, pageSize],
  );

  useEffect(() => {
    void load(filter, null);
  }, [load, filter]);

  const names = new Map((actors.data?.members ?? []).map((m) => [m.account.id, m.account.name]));
  const actorName = (id: string | null) => (id ? (names.get(id) ?? id) : t("audit.system"));

  return (
    <Card title={t("audit.title")}>
      <Form
        form={form}
        layout="inline"
        name="audit-filter"
        onFinish={(v) => setFilter(toFilter(v))}
        style={{ marginBottom: 16, rowGap: 8 }}
      >
        <Form.Item name="actorId" label={t("audit.actor")}>
          {actors.error ? (
            <Input placeholder={t("audit.actorId")} style={{ width: 200 }} />
          ) : (
            <Select
              allowClear
              showSearch
              optionFilterProp="label"
              style={{ width: 180 }}
              options={(actors.data?.members ?? []).map((m) => ({ value: m.account.id, label: m.account.name }))}
            />
          )}
        </Form.Item>
        <Form.Item name="action" label={t("audit.action")} tooltip={t("audit.actionHelp")}>
          <Input placeholder="createRole" style={{ width: 180 }} />
        </Form.Item>
        <Form.Item name="targetType" label={t("audit.targetType")}>
          <Input style={{ width: 140 }} />
        </Form.Item>
        <Form.Item name="range" label={t("audit.range")}>
          <DatePicker.RangePicker showTime={{ format: "HH:mm" }} format="YYYY-MM-DD HH:mm" allowEmpty={[true, true]} />
        </Form.Item>
        <Form.Item>
          <Space>
            <Button type="primary" htmlType="submit">
              {t("audit.search")}
            </Button>
            <Button
              onClick={() => {
                form.resetFields();
                setFilter({});
              }}
            >
              {t("audit.reset")}
            </Button>
          </Space>
        </Form.Item>
      </Form>
      {error != null && <Alert role="alert" type="error" title={errorText(error, t)} style={{ marginBottom: 16 }} />}
      <Table<Entry>
        rowKey="seq"
        loading={loading}
        dataSource={entries}
        pagination={false}
        expandable={{
          rowExpandable: (e) => e.details != null && Object.keys(e.details as object).length > 0,
          expandedRowRender: (e) => (
            <Typography.Paragraph>
              <pre style={{ margin: 0, whiteSpace: "pre-wrap" }}>{JSON.stringify(e.details, null, 2)}</pre>
            </Typography.Paragraph>
          ),
        }}
        columns={[
          { title: t("audit.at"), dataIndex: "at", render: formatDateTime, width: 180 },
          { title: t("audit.actor"), dataIndex: "actorId", render: actorName },
          { title: t("audit.action"), dataIndex: "action", render: (a: string) => <Typography.Text code>{a}</Typography.Text> },
          {
            title: t("audit.outcome"),
            dataIndex: "outcome",
            render: (o: string) => <Tag color={o === "ok" ? "green" : "orange"}>{o}</Tag>,
          },
          { title: t("audit.target"), render: (_, e) => [e.targetType, e.targetId].filter(Boolean).join(" ") },
          { title: t("audit.source"), render: (_, e) => [e.actorApp, e.actorIp].filter(Boolean).join(" · ") },
        ]}
      />
      <div style={{ textAlign: "center", marginTop: 16 }}>
        {more ? (
          <Button loading={loading} onClick={() => void load(filter, entries[entries.length - 1]?.seq ?? null)}>
            {t("audit.more")}
          </Button>
        ) : (
          !loading && entries.length > 0 && <Typography.Text type="secondary">{t("audit.end")}</Typography.Text>
        )}
      </div>
    </Card>
  );
}
