import { Button, Result, Spin } from "antd";
import { createContext, useContext, type ReactNode } from "react";
import { useNavigate } from "react-router-dom";
import type { ConsoleViewerQuery } from "../gql/types";
import { useI18n } from "../i18n/I18n";

/** The permission each page needs (the one its main query asks for); pages not named here
 * (home, sessions) are every member's. The menu shows a page only when the signed-in member
 * has its permission, and a page opened by its URL without it shows the 403 state. The
 * gateway checks every field on its own: this only spares members pages they cannot use. */
export const PAGE_PERMISSION: Record<string, string> = {
  "/staff": "member.read",
  "/roles": "role.manage",
  "/teams": "member.read",
  "/settings": "tenant.manage",
  "/routing": "lead.route",
  "/audit": "audit.read",
  "/projects": "project.read",
  "/units": "unit.read",
};

export interface PermissionsValue {
  /** The viewer is still being read. */
  loading: boolean;
  /** The signed-in member's permissions; null when they could not be read (then nothing is
   * hidden: the gateway still refuses what the member may not do). */
  permissions: ReadonlySet<string> | null;
  /** The layout's `ConsoleViewer` answer, read once for the menu and the home page. */
  viewer: { data: ConsoleViewerQuery | null; error: unknown; loading: boolean };
}

const PermissionsContext = createContext<PermissionsValue>({
  loading: false,
  permissions: null,
  viewer: { data: null, error: null, loading: false },
});

export const PermissionsProvider = PermissionsContext.Provider;

export function usePermissions() {
  const value = useContext(PermissionsContext);
  return {
    ...value,
    /** Whether the member has `permission` (no permission named: yes). */
    can: (permission?: string) => !permission || value.permissions === null || value.permissions.has(permission),
  };
}

/** The signed-in member as the layout read them (`ConsoleViewer`). */
export function useViewer() {
  return useContext(PermissionsContext).viewer;
}

/** The page at `path` when the member has its permission, else a clear 403. */
export function Guarded({ path, children }: { path: string; children: ReactNode }) {
  const { t } = useI18n();
  const navigate = useNavigate();
  const { loading, can } = usePermissions();
  const permission = PAGE_PERMISSION[path];
  if (permission && loading) return <Spin style={{ display: "block", margin: 48 }} />;
  if (can(permission)) return <>{children}</>;
  return (
    <Result
      status="403"
      title="403"
      subTitle={t("forbidden.page", { permission })}
      data-testid="forbidden"
      extra={
        <Button type="primary" onClick={() => navigate("/")}>
          {t("forbidden.home")}
        </Button>
      }
    />
  );
}
