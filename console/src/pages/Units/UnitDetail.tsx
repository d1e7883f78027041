import { Alert, Card, Descriptions, Skeleton, Space, Table, Tag, Timeline, Typography } from "antd";
import { Link, useParams } from "react-router-dom";
import { ApiError } from "../../api/client";
import { errorText } from "../../components/errors";
import { useQuery } from "../../components/useQuery";
import { ConsoleUnit, ConsoleUnitHistory } from "../../gql/documents";
import type { UnitStatus } from "../../gql/types";
import { useFormat } from "../../i18n/format";
import { useI18n } from "../../i18n/I18n";
import { STATUS_COLOURS, statusKey } from "./status";
import { UnitActions } from "./UnitActions";

const EVENT_KINDS = ["created", "status", "hold", "release", "hold_expired", "price", "subscription", "listed", "listing_price", "resold"];

/** One unit: its facts, price and status, hold/release, and (with unit.history) its price
 * history and whole timeline. */
export function UnitDetailPage() {
  const { id = "" } = useParams();
  const { t } = useI18n();
  const fmt = useFormat();
  const { data, error, loading, reload } = useQuery(ConsoleUnit, { id });
  const history = useQuery(ConsoleUnitHistory, { id });

  if (error) return <Alert role="alert" type="error" title={errorText(error, t)} />;
  if (loading && !data) return <Skeleton active />;
  const unit = data?.unit;
  if (!unit || !data) return <Alert role="alert" type="warning" title={t("inv.notFound")} />;
  const permissions = new Set(data.me.permissions);
  const tag = (s: UnitStatus | null) =>
    s ? (
      <Tag color={STATUS_COLOURS[s].border} data-status={s}>
        {t(statusKey(s))}
      </Tag>
    ) : null;
  const events = history.data?.unit?.timeline ?? [];
  const prices = events.filter((e) => e.newPrice && (e.kind === "price" || e.kind === "created" || e.kind === "listing_price"));
  const kindText = (kind: string) => (EVENT_KINDS.includes(kind) ? t(`inv.event.${kind}` as never) : kind);
  const historyForbidden = history.error instanceof ApiError && history.error.code === "FORBIDDEN";

  return (
    <Space orientation="vertical" size="large" style={{ width: "100%" }}>
      <Card
        title={
          <span data-testid="unit-title">
            {unit.project.name} · {unit.building.name} · {unit.number}
          </span>
        }
        extra={
          <UnitActions
            unit={unit}
            caller={{ accountId: data.me.account.id, permissions }}
            onDone={() => {
              void reload();
              void history.reload();
            }}
          />
        }
      >
        <Descriptions column={2} size="small" bordered>
          <Descriptions.Item label={t("inv.status")}>
            {tag(unit.status)} <Typography.Text type="secondary">{unit.standardStatus}</Typography.Text>
          </Descriptions.Item>
          <Descriptions.Item label={t("inv.statusChangedAt")}>{fmt.dateTime(unit.statusChangedAt)}</Descriptions.Item>
          {unit.status === "ON_HOLD" && (
            <Descriptions.Item label={t("inv.unit.holdExpires")} span={2}>
              {fmt.dateTime(unit.holdExpiresAt)}
            </Descriptions.Item>
          )}
          <Descriptions.Item label={t("inv.listPrice")}>
            <span data-testid="list-price">{fmt.money(unit.listPrice)}</span>
          </Descriptions.Item>
          <Descriptions.Item label={t("inv.pricePerM2")}>{fmt.money(unit.pricePerM2)}</Descriptions.Item>
          <Descriptions.Item label={t("inv.floor")}>{unit.floor}</Descriptions.Item>
          <Descriptions.Item label={t("inv.unitType")}>{unit.unitType?.name ?? "—"}</Descriptions.Item>
          <Descriptions.Item label={t("inv.grossArea")}>
            <span data-testid="gross-area">{fmt.area(unit.grossArea)}</span>
          </Descriptions.Item>
          <Descriptions.Item label={t("inv.netArea")}>{fmt.area(unit.netArea)}</Descriptions.Item>
          <Descriptions.Item label={t("inv.orientation")}>
            {unit.orientation ? t(`inv.orientation.${unit.orientation}` as never) : "—"}
          </Descriptions.Item>
          <Descriptions.Item label={t("inv.rooms")}>{unit.rooms ?? "—"}</Descriptions.Item>
          <Descriptions.Item label={t("inv.tags")}>{unit.tags.length ? unit.tags.map((g) => <Tag key={g}>{g}</Tag>) : "—"}</Descriptions.Item>
          <Descriptions.Item label={t("inv.createdAt")}>{fmt.dateTime(unit.createdAt)}</Descriptions.Item>
        </Descriptions>
        <Space style={{ marginTop: 16 }}>
          <Link to={`/buildings/${unit.building.id}/sales-table`}>{t("inv.salesTable")}</Link>
          <Link to={`/projects/${unit.project.id}`}>{unit.project.name}</Link>
        </Space>
      </Card>
      {historyForbidden ? (
        <Alert type="info" title={t("inv.unit.historyForbidden")} />
      ) : history.error != null ? (
        <Alert role="alert" type="error" title={errorText(history.error, t)} />
      ) : (
        <>
          <Card title={t("inv.unit.priceHistory")}>
            <Table
              rowKey="id"
              size="small"
              loading={history.loading}
              pagination={false}
              dataSource={prices}
              columns={[
                { title: t("inv.event.at"), render: (_, e) => fmt.dateTime(e.at) },
                { title: t("inv.prices.old"), render: (_, e) => fmt.money(e.oldPrice), align: "right" },
                { title: t("inv.prices.new"), render: (_, e) => fmt.money(e.newPrice), align: "right" },
                { title: t("inv.prices.reason"), dataIndex: "reason" },
              ]}
            />
          </Card>
          <Card title={t("inv.unit.timeline")}>
            <Timeline
              data-testid="timeline"
              items={[...events].reverse().map((e) => ({
                key: e.id,
                children: (
                  <Space orientation="vertical" size={0}>
                    <Typography.Text strong>
                      {kindText(e.kind)} {e.fromStatus && tag(e.fromStatus)}
                      {e.fromStatus && e.toStatus && "→ "}
                      {e.toStatus && tag(e.toStatus)}
                    </Typography.Text>
                    {e.newPrice && (
                      <Typography.Text>
                        {e.oldPrice ? `${fmt.money(e.oldPrice)} → ` : ""}
                        {fmt.money(e.newPrice)}
                      </Typography.Text>
                    )}
                    {e.reason && <Typography.Text type="secondary">{e.reason}</Typography.Text>}
                    <Typography.Text type="secondary">{fmt.dateTime(e.at)}</Typography.Text>
                  </Space>
                ),
              }))}
            />
          </Card>
        </>
      )}
    </Space>
  );
}
