import {
  ApiOutlined,
  ApartmentOutlined,
  AppstoreOutlined,
  AuditOutlined,
  BranchesOutlined,
  BuildOutlined,
  DesktopOutlined,
  HomeOutlined,
  LogoutOutlined,
  SafetyCertificateOutlined,
  SettingOutlined,
  TeamOutlined,
} from "@ant-design/icons";
import { Button, Layout, Menu, Select, Space, Typography } from "antd";
import { useMemo } from "react";
import { Navigate, Outlet, useLocation, useNavigate } from "react-router-dom";
import { execute } from "../api/client";
import { useAuth } from "../auth/Auth";
import { ConsoleSignOut, ConsoleViewer } from "../gql/documents";
import { useI18n } from "../i18n/I18n";
import { PAGE_PERMISSION, PermissionsProvider } from "./Permissions";
import { useQuery } from "./useQuery";

/** The signed-in frame: the menu, the tenant, the language, sign-out. */
export function ConsoleLayout() {
  const { t, locale, setLocale } = useI18n();
  const { tenant, tokens, forget } = useAuth();
  const navigate = useNavigate();
  const location = useLocation();
  // The member's permissions hide the pages they may not use (components/Permissions.tsx).
  const viewer = useQuery(ConsoleViewer, {});
  const granted = viewer.data?.me?.permissions;
  const permissions = useMemo(() => (Array.isArray(granted) ? new Set(granted) : null), [granted]);
  if (!tenant) return <Navigate to="/tenant" replace />;
  if (!tokens) return <Navigate to="/sign-in" replace />;

  async function signOut() {
    try {
      await execute(ConsoleSignOut, {}, { tenant, accessToken: tokens!.accessToken });
    } catch {
      /* the session may be gone already: forget it here either way */
    }
    forget();
    navigate("/sign-in", { replace: true });
  }

  const items = [
    { key: "/", icon: <HomeOutlined />, label: t("menu.home") },
    { key: "/staff", icon: <TeamOutlined />, label: t("menu.staff") },
    { key: "/roles", icon: <SafetyCertificateOutlined />, label: t("menu.roles") },
    { key: "/sessions", icon: <DesktopOutlined />, label: t("menu.sessions") },
    { key: "/teams", icon: <ApartmentOutlined />, label: t("menu.teams") },
    { key: "/settings", icon: <SettingOutlined />, label: t("menu.settings") },
    { key: "/routing", icon: <BranchesOutlined />, label: t("menu.routing") },
    { key: "/audit", icon: <AuditOutlined />, label: t("menu.audit") },
    { key: "/projects", icon: <BuildOutlined />, label: t("menu.projects") },
    { key: "/units", icon: <AppstoreOutlined />, label: t("menu.units") },
  ].filter((item) => !PAGE_PERMISSION[item.key] || (!viewer.loading && (permissions === null || permissions.has(PAGE_PERMISSION[item.key]))));
  return (
    <Layout style={{ minHeight: "100vh" }}>
      <Layout.Sider breakpoint="lg" collapsedWidth={0} theme="light">
        <Typography.Title level={4} style={{ padding: "16px 24px", margin: 0 }}>
          {t("app.title")}
        </Typography.Title>
        <nav aria-label={t("app.title")}>
          <Menu
            mode="inline"
            selectedKeys={[location.pathname]}
            items={items}
            onClick={({ key }) => navigate(key)}
          />
        </nav>
        <Button type="link" href="/graphql" target="_blank" icon={<ApiOutlined />} style={{ paddingLeft: 24 }}>
          {t("menu.graphiql")}
        </Button>
      </Layout.Sider>
      <Layout>
        <Layout.Header style={{ background: "#fff", display: "flex", justifyContent: "flex-end", paddingInline: 24 }}>
          <Space>
            <Typography.Text data-testid="tenant">{tenant}</Typography.Text>
            <Select
              aria-label={t("app.language")}
              value={locale}
              onChange={setLocale}
              options={[
                { value: "zh-CN", label: "简体中文" },
                { value: "en", label: "English" },
              ]}
            />
            <Button icon={<LogoutOutlined />} onClick={signOut}>
              {t("menu.signOut")}
            </Button>
          </Space>
        </Layout.Header>
        <Layout.Content style={{ margin: 24 }}>
          <PermissionsProvider value={{ loading: viewer.loading, permissions, viewer }}>
            <Outlet />
          </PermissionsProvider>
        </Layout.Content>
      </Layout>
    </Layout>
  );
}
