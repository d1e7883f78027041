import { Alert, Button, Card, Select, Space, Table, Tag, Typography } from "antd";
import { useMemo, useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router-dom";
import { errorText } from "../../components/errors";
import { useQuery } from "../../components/useQuery";
import { ConsoleUnitFilters, ConsoleUnits } from "../../gql/documents";
import type { UnitStatus } from "../../gql/types";
import { useFormat } from "../../i18n/format";
import { useI18n } from "../../i18n/I18n";
import { STATUS_COLOURS, STATUSES, statusKey } from "./status";

const PAGE = 20;

/** Units of every project, a page at a time (cursor pagination), filtered by project,
 * building and status; the filters live in the address, so a filtered list can be linked. */
export function UnitsPage() {
  const { t } = useI18n();
  const fmt = useFormat();
  const navigate = useNavigate();
  const [params, setParams] = useSearchParams();
  const project = params.get("project") ?? undefined;
  const building = params.get("building") ?? undefined;
  const statuses = (params.get("status") ?? "").split(",").filter((s): s is UnitStatus => STATUSES.includes(s as UnitStatus));
  // Cursors of the pages seen so far: page k starts after cursors[k] (null: the first page).
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const page = cursors.length - 1;
  const filter = useMemo(
    () => ({
      projectIds: project ? [project] : null,
      buildingIds: building ? [building] : null,
      statuses: statuses.length ? statuses : null,
    }),
    [project, building, statuses.join(",")],
  );
  const filters = useQuery(ConsoleUnitFilters, {});
  const { data, error, loading } = useQuery(ConsoleUnits, { filter, first: PAGE, after: cursors[page] });

  function setFilter(name: string, value: string | undefined) {
    const next = new URLSearchParams(params);
    if (value) next.set(name, value);
    else next.delete(name);
    if (name === "project") next.delete("building");
    setParams(next, { replace: true });
    setCursors([null]);
  }

  const projects = filters.data?.projects ?? [];
  const buildings = projects.find((p) => p.id === project)?.buildings ?? projects.flatMap((p) => p.buildings);
  const connection = data?.units;
  return (
    <Card title={t("inv.units")}>
      <Space wrap style={{ marginBottom: 16 }}>
        <Select
          aria-label={t("inv.project")}
          placeholder={t("inv.project")}
          allowClear
          style={{ minWidth: 200 }}
          value={project}
          onChange={(v?: string) => setFilter("project", v)}
          options={projects.map((p) => ({ value: p.id, label: p.name }))}
        />
        <Select
          aria-label={t("inv.building")}
          placeholder={t("inv.building")}
          allowClear
          style={{ minWidth: 160 }}
          value={building}
          onChange={(v?: string) => setFilter("building", v)}
          options={buildings.map((b) => ({ value: b.id, label: b.name }))}
        />
        <Select
          aria-label={t("inv.status")}
          placeholder={t("inv.status")}
          mode="multiple"
          allowClear
          style={{ minWidth: 240 }}
          value={statuses}
          onChange={(v: string[]) => setFilter("status", v.join(",") || undefined)}
          options={STATUSES.map((s) => ({ value: s, label: t(statusKey(s)) }))}
        />
        {building && (
          <Link to={`/buildings/${building}/sales-table`} data-testid="sales-table-link">
            {t("inv.salesTable")}
          </Link>
        )}
      </Space>
      {error != null && <Alert role="alert" type="error" title={errorText(error, t)} style={{ marginBottom: 16 }} />}
      <Table
        rowKey={(e) => e.node.id}
        loading={loading}
        dataSource={connection?.edges ?? []}
        pagination={false}
        onRow={(e) => ({ onClick: () => navigate(`/units/${e.node.id}`), style: { cursor: "pointer" } })}
        columns={[
          { title: t("inv.unit.number"), render: (_, e) => <Link to={`/units/${e.node.id}`}>{e.node.number}</Link> },
          { title: t("inv.project"), render: (_, e) => e.node.project.name },
          { title: t("inv.building"), render: (_, e) => e.node.building.name },
          { title: t("inv.floor"), render: (_, e) => e.node.floor },
          { title: t("inv.unitType"), render: (_, e) => e.node.unitType?.name ?? "—" },
          { title: t("inv.grossArea"), render: (_, e) => fmt.area(e.node.grossArea) },
          { title: t("inv.listPrice"), render: (_, e) => fmt.money(e.node.listPrice), align: "right" },
          { title: t("inv.pricePerM2"), render: (_, e) => fmt.money(e.node.pricePerM2), align: "right" },
          {
            title: t("inv.status"),
            render: (_, e) => (
              <Tag color={STATUS_COLOURS[e.node.status].border} data-status={e.node.status}>
                {t(statusKey(e.node.status))}
              </Tag>
            ),
          },
        ]}
      />
      <Space style={{ marginTop: 16 }}>
        <Button disabled={page === 0} onClick={() => setCursors((c) => c.slice(0, -1))}>
          {t("inv.previous")}
        </Button>
        <Typography.Text data-testid="page">{t("inv.page", { page: page + 1 })}</Typography.Text>
        <Button
          disabled={!connection?.pageInfo.hasNextPage}
          onClick={() => setCursors((c) => [...c, connection?.pageInfo.endCursor ?? null])}
        >
          {t("inv.next")}
        </Button>
        {connection && <Typography.Text type="secondary">{t("inv.total", { count: connection.totalCount })}</Typography.Text>}
      </Space>
    </Card>
  );
}
