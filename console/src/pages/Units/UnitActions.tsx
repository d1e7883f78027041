import { Button, Popconfirm, Space, message } from "antd";
import { useState } from "react";
import { useAuth } from "../../auth/Auth";
import { errorText, userErrorText, type UserErrorData } from "../../components/errors";
import { HoldUnit, ReleaseUnitHold } from "../../gql/documents";
import type { UnitStatus } from "../../gql/types";
import { useI18n } from "../../i18n/I18n";

export interface ActionUnit {
  id: string;
  status: UnitStatus;
  heldBy: string | null;
}

export interface Caller {
  accountId: string;
  permissions: Set<string>;
}

/** Hold an available unit (unit.hold) or release a hold (the holder, or staff with
 * unit.write); shows nothing the caller may not do. */
export function UnitActions({ unit, caller, onDone }: { unit: ActionUnit; caller: Caller; onDone: () => void }) {
  const { t } = useI18n();
  const { run } = useAuth();
  const [busy, setBusy] = useState(false);
  const [toast, holder] = message.useMessage();
  const canHold = unit.status === "AVAILABLE" && caller.permissions.has("unit.hold");
  const canRelease =
    unit.status === "ON_HOLD" &&
    ((unit.heldBy === caller.accountId && caller.permissions.has("unit.hold")) || caller.permissions.has("unit.write"));

  async function act(kind: "hold" | "release") {
    setBusy(true);
    try {
      const result =
        kind === "hold"
          ? (await run(HoldUnit, { input: { unitId: unit.id } })).holdUnit
          : (await run(ReleaseUnitHold, { unitId: unit.id })).releaseUnitHold;
      if (result.__typename === "UnitPayload") {
        void toast.success(t(kind === "hold" ? "inv.unit.held" : "inv.unit.released"));
        onDone();
      } else void toast.error(userErrorText(result as UserErrorData, t));
    } catch (err) {
      void toast.error(errorText(err, t));
    } finally {
      setBusy(false);
    }
  }

  if (!canHold && !canRelease) return holder;
  return (
    <Space>
      {holder}
      {canHold && (
        <Button type="primary" loading={busy} onClick={() => void act("hold")} data-testid="hold">
          {t("inv.unit.hold")}
        </Button>
      )}
      {canRelease && (
        <Popconfirm title={t("inv.unit.releaseConfirm")} onConfirm={() => act("release")} okText={t("common.ok")} cancelText={t("common.cancel")}>
          <Button loading={busy} data-testid="release">
            {t("inv.unit.release")}
          </Button>
        </Popconfirm>
      )}
    </Space>
  );
}
