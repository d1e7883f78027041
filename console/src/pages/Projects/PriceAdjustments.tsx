import { Alert, Button, Card, Form, Input, InputNumber, Modal, Popconfirm, Radio, Select, Space, Table, Tag, message } from "antd";
import { useState } from "react";
import { useAuth } from "../../auth/Auth";
import { errorText, userErrorText, type UserErrorData } from "../../components/errors";
import { useQuery } from "../../components/useQuery";
import { AdjustPrices, ConsolePriceAdjustments, DecidePriceAdjustment } from "../../gql/documents";
import { parseMajor, useFormat } from "../../i18n/format";
import { useI18n } from "../../i18n/I18n";

type Change = "percent" | "amount" | "pricePerM2" | "price";

interface AdjustValues {
  reason: string;
  buildingIds?: string[];
  unitTypeIds?: string[];
  floorMin?: number;
  floorMax?: number;
  change: Change;
  value: string;
}

const STATUS_COLOURS: Record<string, string> = {
  applied: "green",
  pending_approval: "gold",
  rejected: "red",
  stale: "default",
};

interface ProjectRef {
  id: string;
  buildings: { id: string; name: string }[];
  unitTypes: { id: string; name: string }[];
}

/** A project's price adjustments (调价) with their approvals; a new adjustment by rule. */
export function PriceAdjustmentsCard({ project, permissions }: { project: ProjectRef; permissions: Set<string> }) {
  const { t } = useI18n();
  const fmt = useFormat();
  const { run } = useAuth();
  const { data, error, loading, reload } = useQuery(ConsolePriceAdjustments, { projectId: project.id });
  const [open, setOpen] = useState(false);
  const [formError, setFormError] = useState<string | null>(null);
  const [form] = Form.useForm<AdjustValues>();
  const [toast, holder] = message.useMessage();
  const change = Form.useWatch("change", form) ?? "percent";

  function ruleText(rule: unknown): string {
    const r = (rule ?? {}) as Record<string, unknown>;
    const parts: string[] = [];
    if (r.percent != null) parts.push(`${Number(r.percent) > 0 ? "+" : ""}${r.percent}%`);
    if (r.amount != null) parts.push(`${Number(r.amount) > 0 ? "+" : ""}${fmt.money({ minorUnits: Number(r.amount), currency: fmt.currency })}`);
    if (r.price_per_m2 != null || r.pricePerM2 != null)
      parts.push(`${fmt.money({ minorUnits: Number(r.price_per_m2 ?? r.pricePerM2), currency: fmt.currency })}/m²`);
    if (r.price != null) parts.push(`= ${fmt.money({ minorUnits: Number(r.price), currency: fmt.currency })}`);
    if (r.floor_min != null || r.floor_max != null) parts.push(t("inv.prices.floors", { min: String(r.floor_min ?? "…"), max: String(r.floor_max ?? "…") }));
    return parts.join(" · ") || "—";
  }

  async function adjust(v: AdjustValues) {
    setFormError(null);
    const input: Record<string, unknown> = {
      projectId: project.id,
      reason: v.reason.trim(),
      buildingIds: v.buildingIds?.length ? v.buildingIds : null,
      unitTypeIds: v.unitTypeIds?.length ? v.unitTypeIds : null,
      floorMin: v.floorMin ?? null,
      floorMax: v.floorMax ?? null,
    };
    if (v.change === "percent") input.percent = v.value.trim();
    else input[v.change] = parseMajor(v.value, fmt.currency);
    try {
      const result = (await run(AdjustPrices, { input: input as never })).adjustPrices;
      if (result.__typename === "PriceAdjustmentPayload") {
        setOpen(false);
        form.resetFields();
        void toast.success(
          result.adjustment.status === "pending_approval"
            ? t("inv.prices.pending", { count: result.adjustment.unitCount })
            : t("inv.prices.applied", { count: result.adjustment.unitCount }),
        );
        await reload();
      } else setFormError(userErrorText(result as UserErrorData, t));
    } catch (err) {
      setFormError(errorText(err, t));
    }
  }

  async function decide(id: string, approve: boolean) {
    try {
      const result = (await run(DecidePriceAdjustment, { input: { id, approve, note: "" } })).decidePriceAdjustment;
      if (result.__typename === "PriceAdjustmentPayload") await reload();
      else void toast.error(userErrorText(result as UserErrorData, t));
    } catch (err) {
      void toast.error(errorText(err, t));
    }
  }

  const valueRule = {
    validator: (_: unknown, value?: string) => {
      if (!value?.trim()) return Promise.reject(new Error(t("form.required", { field: t("inv.prices.value") })));
      const ok = change === "percent" ? /^-?\d{1,3}(\.\d{1,4})?$/.test(value.trim()) : parseMajor(value, fmt.currency) !== null;
      return ok ? Promise.resolve() : Promise.reject(new Error(t("inv.form.number", { field: t("inv.prices.value") })));
    },
  };

  return (
    <Card
      title={t("inv.prices.title")}
      extra={
        <Button type="primary" onClick={() => setOpen(true)}>
          {t("inv.prices.create")}
        </Button>
      }
    >
      {holder}
      {error != null && <Alert role="alert" type="error" title={errorText(error, t)} style={{ marginBottom: 16 }} />}
      <Table
        rowKey="id"
        loading={loading}
        dataSource={data?.priceAdjustments ?? []}
        expandable={{
          rowExpandable: (a) => a.lines.length > 0,
          expandedRowRender: (a) => (
            <Table
              rowKey="unitId"
              size="small"
              pagination={a.lines.length > 20 ? { pageSize: 20 } : false}
              dataSource={a.lines}
              columns={[
                { title: t("inv.unit"), dataIndex: "unitId" },
                { title: t("inv.prices.old"), render: (_, l) => fmt.money({ minorUnits: l.oldPrice, currency: fmt.currency }) },
                { title: t("inv.prices.new"), render: (_, l) => fmt.money({ minorUnits: l.newPrice, currency: fmt.currency }) },
              ]}
            />
          ),
        }}
        columns={[
          { title: t("inv.createdAt"), render: (_, a) => fmt.dateTime(a.createdAt) },
          { title: t("inv.prices.reason"), dataIndex: "reason" },
          { title: t("inv.prices.rule"), render: (_, a) => ruleText(a.rule) },
          { title: t("inv.prices.units"), dataIndex: "unitCount" },
          { title: t("inv.prices.maxDiscount"), render: (_, a) => `${a.maxDiscountPct}%` },
          {
            title: t("inv.status"),
            render: (_, a) => (
              <Tag color={STATUS_COLOURS[a.status] ?? "default"}>
                {a.status in STATUS_COLOURS ? t(`inv.prices.status.${a.status}` as never) : a.status}
              </Tag>
            ),
          },
          { title: t("inv.prices.decided"), render: (_, a) => a.decisionNote || "—" },
          {
            key: "actions",
            render: (_, a) =>
              a.status === "pending_approval" &&
              permissions.has("unit.price.approve") && (
                <Space>
                  <Popconfirm title={t("inv.prices.approveConfirm")} onConfirm={() => decide(a.id, true)}>
                    <Button size="small" type="primary">
                      {t("inv.prices.approve")}
                    </Button>
                  </Popconfirm>
                  <Popconfirm title={t("inv.prices.rejectConfirm")} onConfirm={() => decide(a.id, false)}>
                    <Button size="small" danger>
                      {t("inv.prices.reject")}
                    </Button>
                  </Popconfirm>
                </Space>
              ),
          },
        ]}
      />
      <Modal
        open={open}
        title={t("inv.prices.create")}
        okText={t("inv.save")}
        cancelText={t("common.cancel")}
        onCancel={() => setOpen(false)}
        onOk={() => form.submit()}
        destroyOnHidden
      >
        {formError && <Alert role="alert" type="error" title={formError} style={{ marginBottom: 16 }} />}
        <Form form={form} layout="vertical" name="adjust" onFinish={adjust} initialValues={{ change: "percent" }}>
          <Form.Item name="buildingIds" label={t("inv.buildings")}>
            <Select mode="multiple" allowClear options={project.buildings.map((b) => ({ value: b.id, label: b.name }))} />
          </Form.Item>
          <Form.Item name="unitTypeIds" label={t("inv.unitTypes")}>
            <Select mode="multiple" allowClear options={project.unitTypes.map((u) => ({ value: u.id, label: u.name }))} />
          </Form.Item>
          <Space>
            <Form.Item name="floorMin" label={t("inv.floorMin")}>
              <InputNumber min={-10} max={300} precision={0} />
            </Form.Item>
            <Form.Item name="floorMax" label={t("inv.floorMax")}>
              <InputNumber min={-10} max={300} precision={0} />
            </Form.Item>
          </Space>
          <Form.Item name="change" label={t("inv.prices.change")}>
            <Radio.Group
              options={(["percent", "amount", "pricePerM2", "price"] as Change[]).map((c) => ({
                value: c,
                label: t(`inv.prices.change.${c}` as never),
              }))}
            />
          </Form.Item>
          <Form.Item
            name="value"
            label={`${t("inv.prices.value")} (${change === "percent" ? "%" : fmt.currency})`}
            rules={[valueRule]}
          >
            <Input inputMode="decimal" />
          </Form.Item>
          <Form.Item
            name="reason"
            label={t("inv.prices.reason")}
            rules={[{ required: true, whitespace: true, message: t("form.required", { field: t("inv.prices.reason") }) }]}
          >
            <Input />
          </Form.Item>
        </Form>
      </Modal>
    </Card>
  );
}
