import { Alert, Badge, Card, Descriptions, Drawer, Skeleton, Space, Tag, Typography } from "antd";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { liveClient, subscribe } from "../../api/ws";
import { useAuth } from "../../auth/Auth";
import { errorText } from "../../components/errors";
import { useQuery } from "../../components/useQuery";
import { ConsoleRegional, ConsoleSalesTable, ConsoleUnit, SalesTableChanges } from "../../gql/documents";
import type { ConsoleSalesTableQuery, UnitStatus } from "../../gql/types";
import { useFormat } from "../../i18n/format";
import { useI18n } from "../../i18n/I18n";
import { STATUS_COLOURS, STATUSES, statusKey } from "../Units/status";
import { UnitActions } from "../Units/UnitActions";
import { layout } from "./grid";

type Table = NonNullable<ConsoleSalesTableQuery["salesTable"]>;
type Cell = Table["units"][number];
type LiveState = "connecting" | "connected" | "closed";

/** A session's tokens as Auth keeps them (read here at each reconnect, so a refresh made
 * meanwhile counts). */
function storedAccess(tenant: string): { token: string; expiresAt: number } | null {
  try {
    const raw = JSON.parse(localStorage.getItem(`anju.session.${tenant}`) ?? "null");
    return raw?.accessToken ? { token: raw.accessToken, expiresAt: new Date(raw.accessTokenExpiresAt).getTime() } : null;
  } catch {
    return null;
  }
}

/** 销控表: a building's units by floor (top first) and stack, coloured by status, with a
 * legend that counts them. It follows unitChanges over graphql-ws from the table's own
 * sequence, so nothing between the read and the subscription is missed; a RefetchRequired
 * (too far behind) reads the table again. Clicking a unit shows it and its actions. */
export function SalesTablePage() {
  const { id: buildingId = "" } = useParams();
  const { t } = useI18n();
  const fmt = useFormat();
  const { tenant, run } = useAuth();
  const [table, setTable] = useState<Table | null>(null);
  const [permissions, setPermissions] = useState<Set<string>>(new Set());
  const [accountId, setAccountId] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [live, setLive] = useState<LiveState>("connecting");
  const [selected, setSelected] = useState<string | null>(null);
  const [missing, setMissing] = useState(false);
  const runRef = useRef(run);
  runRef.current = run;
  const seqRef = useRef(0);

  const accessToken = useCallback(async () => {
    if (!tenant) return null;
    const stored = storedAccess(tenant);
    if (stored && stored.expiresAt > Date.now() + 15_000) return stored.token;
    // Ran out (or about to): any request refreshes the session once (Auth), then read it again.
    await runRef.current(ConsoleRegional, {}).catch(() => {});
    return storedAccess(tenant)?.token ?? null;
  }, [tenant]);

  useEffect(() => {
    if (!tenant || !buildingId) return;
    let active = true;
    let stop: (() => void) | null = null;
    const client = liveClient({ tenant, accessToken, onState: (s) => active && setLive(s) });

    async function load() {
      try {
        const data = await runRef.current(ConsoleSalesTable, { buildingId });
        if (!active) return;
        setPermissions(new Set(data.me.permissions));
        setAccountId(data.me.account.id);
        setMissing(!data.salesTable);
        if (!data.salesTable) {
          setTable(null);
          setError(null);
          return;
        }
        seqRef.current = data.salesTable.seq;
        setTable(data.salesTable);
        setError(null);
        stop?.();
        stop = subscribe(client, SalesTableChanges, { buildingId, since: data.salesTable.seq }, {
          next: ({ unitChanges: change }) => {
            if (!active) return;
            if (change.__typename === "RefetchRequired") {
              void load();
              return;
            }
            if (change.__typename !== "UnitChange" || change.seq <= seqRef.current) return;
            seqRef.current = change.seq;
            setTable((current) =>
              current && {
                ...current,
                units: current.units.map((u) =>
                  u.id === change.unitId
                    ? {
                        ...u,
                        status: change.status,
                        version: change.version,
                        holdExpiresAt: change.holdExpiresAt,
                        listPrice: change.listPrice,
                      }
                    : u,
                ),
              },
            );
          },
          error: (err) => active && setError(err instanceof Error ? err : new Error(JSON.stringify(err))),
        });
      } catch (err) {
        if (active) setError(err);
      }
    }
    void load();
    return () => {
      active = false;
      stop?.();
      void client.dispose();
    };
  }, [tenant, buildingId, accessToken]);

  const grid = useMemo(() => (table ? layout(table.units, table.building.floors) : null), [table]);
  const counts = useMemo(() => {
    const c = new Map<UnitStatus, number>();
    for (const u of table?.units ?? []) c.set(u.status, (c.get(u.status) ?? 0) + 1);
    return c;
  }, [table]);
  const chosen = table?.units.find((u) => u.id === selected) ?? null;

  if (error && !table) return <Alert role="alert" type="error" title={errorText(error, t)} />;
  if (!table || !grid) {
    return missing ? (
      <Alert role="alert" type="warning" title={t("inv.notFound")} />
    ) : (
      <Skeleton active />
    );
  }

  const cellStyle = (u: Cell) => ({
    background: STATUS_COLOURS[u.status].background,
    border: `1px solid ${STATUS_COLOURS[u.status].border}`,
    color: STATUS_COLOURS[u.status].text,
    borderRadius: 4,
    padding: "4px 6px",
    minWidth: 92,
    cursor: "pointer",
    textAlign: "left" as const,
    font: "inherit",
    width: "100%",
  });

  return (
    <Space orientation="vertical" size="large" style={{ width: "100%" }}>
      <Card
        title={
          <span data-testid="sales-table-title">
            {t("inv.salesTable")}: {table.building.project.name} · {table.building.name}
          </span>
        }
        extra={
          <Space>
            <Badge
              data-testid="live"
              data-state={live}
              status={live === "connected" ? "success" : live === "connecting" ? "processing" : "error"}
              text={t(`inv.live.${live}`)}
            />
            <Link to={`/units?project=${table.building.project.id}&building=${table.building.id}`}>{t("inv.units")}</Link>
          </Space>
        }
      >
        {error != null && <Alert role="alert" type="error" title={errorText(error, t)} style={{ marginBottom: 16 }} />}
        <Space wrap style={{ marginBottom: 16 }} data-testid="legend">
          {STATUSES.map((s) => (
            <Tag
              key={s}
              data-status={s}
              style={{
                background: STATUS_COLOURS[s].background,
                borderColor: STATUS_COLOURS[s].border,
                color: STATUS_COLOURS[s].text,
              }}
            >
              {t(statusKey(s))} <span data-testid={`count-${s}`}>{counts.get(s) ?? 0}</span>
            </Tag>
          ))}
          <Typography.Text type="secondary">{t("inv.total", { count: table.units.length })}</Typography.Text>
        </Space>
        <div style={{ overflowX: "auto" }}>
          <table data-testid="sales-grid" style={{ borderCollapse: "separate", borderSpacing: 4 }}>
            <thead>
              <tr>
                <th scope="col">{t("inv.floor")}</th>
                {grid.stacks.map((s) => (
                  <th key={s} scope="col">
                    {s}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {grid.floors.map((floor) => (
                <tr key={floor}>
                  <th scope="row" style={{ paddingRight: 8, textAlign: "right" }}>
                    {t("inv.floorN", { floor })}
                  </th>
                  {grid.stacks.map((stack) => (
                    <td key={stack} style={{ verticalAlign: "top" }}>
                      {grid.cell(floor, stack).map((u) => (
                        <button
                          key={u.id}
                          type="button"
                          data-unit={u.number}
                          data-status={u.status}
                          aria-label={`${u.number} ${t(statusKey(u.status))}`}
                          style={cellStyle(u)}
                          onClick={() => setSelected(u.id)}
                        >
                          <div style={{ fontWeight: 600 }}>{u.number}</div>
                          <div style={{ fontSize: 12 }}>{fmt.area(u.grossArea)}</div>
                          <div style={{ fontSize: 12 }}>{fmt.money(u.listPrice)}</div>
                        </button>
                      ))}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </Card>
      <Drawer
        open={chosen !== null}
        onClose={() => setSelected(null)}
        title={chosen ? `${table.building.name} · ${chosen.number}` : ""}
        destroyOnHidden
      >
        {chosen && (
          <UnitPanel
            unitId={chosen.id}
            version={chosen.version}
            caller={{ accountId, permissions }}
          />
        )}
      </Drawer>
    </Space>
  );
}

/** The clicked unit, read again whenever the table sees its version move (heldBy and the
 * rest are not in the live events). */
function UnitPanel({ unitId, version, caller }: { unitId: string; version: number; caller: { accountId: string; permissions: Set<string> } }) {
  const { t } = useI18n();
  const fmt = useFormat();
  const { data, error, reload } = useQuery(ConsoleUnit, { id: unitId });
  useEffect(() => {
    if (data?.unit && data.unit.version !== version) void reload();
    // Only a version the table saw move counts.
  }, [version]);
  if (error) return <Alert role="alert" type="error" title={errorText(error, t)} />;
  const unit = data?.unit;
  if (!unit) return <Skeleton active />;
  return (
    <Space orientation="vertical" style={{ width: "100%" }} data-testid="unit-panel">
      <Descriptions column={1} size="small" bordered>
        <Descriptions.Item label={t("inv.status")}>
          <Tag color={STATUS_COLOURS[unit.status].border} data-status={unit.status}>
            {t(statusKey(unit.status))}
          </Tag>
        </Descriptions.Item>
        {unit.status === "ON_HOLD" && (
          <Descriptions.Item label={t("inv.unit.holdExpires")}>{fmt.dateTime(unit.holdExpiresAt)}</Descriptions.Item>
        )}
        <Descriptions.Item label={t("inv.listPrice")}>{fmt.money(unit.listPrice)}</Descriptions.Item>
        <Descriptions.Item label={t("inv.pricePerM2")}>{fmt.money(unit.pricePerM2)}</Descriptions.Item>
        <Descriptions.Item label={t("inv.floor")}>{unit.floor}</Descriptions.Item>
        <Descriptions.Item label={t("inv.unitType")}>{unit.unitType?.name ?? "—"}</Descriptions.Item>
        <Descriptions.Item label={t("inv.grossArea")}>{fmt.area(unit.grossArea)}</Descriptions.Item>
        <Descriptions.Item label={t("inv.netArea")}>{fmt.area(unit.netArea)}</Descriptions.Item>
        <Descriptions.Item label={t("inv.orientation")}>
          {unit.orientation ? t(`inv.orientation.${unit.orientation}` as never) : "—"}
        </Descriptions.Item>
      </Descriptions>
      <UnitActions unit={unit} caller={caller} onDone={() => void reload()} />
      <Link to={`/units/${unit.id}`}>{t("inv.unit.details")}</Link>
    </Space>
  );
}
