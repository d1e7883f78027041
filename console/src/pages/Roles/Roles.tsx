import { Alert, Button, Card, Checkbox, Drawer, Form, Input, Popconfirm, Radio, Space, Table, Tag, Typography, message } from "antd";
import { useMemo, useState } from "react";
import { useAuth } from "../../auth/Auth";
import { errorText, userErrorText, type UserErrorData } from "../../components/errors";
import { useQuery } from "../../components/useQuery";
import { ConsoleRoles, CreateCustomRole, DeleteCustomRole, UpdateCustomRole } from "../../gql/documents";
import { useI18n } from "../../i18n/I18n";

export const ROLE_KEY_PATTERN = /^[a-z][a-z0-9_]{1,63}$/;
const SCOPES = ["own", "team", "all"] as const;

interface RoleValues {
  key: string;
  name: string;
  dataScope: string;
  permissions: string[];
}

/** Built-in and custom roles; a custom role is edited over the permission catalogue (grouped
 * by the part before the first dot) with its data scope. */
export function RolesPage() {
  const { t } = useI18n();
  const { run } = useAuth();
  const { data, error, loading, reload } = useQuery(ConsoleRoles, {});
  const [editing, setEditing] = useState<RoleValues | "new" | null>(null);
  const [saveError, setSaveError] = useState<string | null>(null);
  const [form] = Form.useForm<RoleValues>();
  const [toast, holder] = message.useMessage();

  const groups = useMemo(() => {
    const byGroup = new Map<string, { key: string; description: string }[]>();
    for (const p of data?.permissionCatalogue ?? []) {
      const group = p.key.split(".")[0];
      byGroup.set(group, [...(byGroup.get(group) ?? []), p]);
    }
    return [...byGroup.entries()];
  }, [data]);

  function open(role: RoleValues | "new") {
    setSaveError(null);
    setEditing(role);
    form.setFieldsValue(role === "new" ? { key: "", name: "", dataScope: "own", permissions: [] } : role);
  }

  async function save(v: RoleValues) {
    setSaveError(null);
    // Sent in the catalogue's order, whatever order they were ticked in.
    const order = new Map((data?.permissionCatalogue ?? []).map((p, i) => [p.key, i]));
    v = { ...v, permissions: [...v.permissions].sort((a, b) => (order.get(a) ?? 0) - (order.get(b) ?? 0)) };
    try {
      const result =
        editing === "new"
          ? (await run(CreateCustomRole, { input: { key: v.key.trim(), name: v.name.trim(), permissions: v.permissions, dataScope: v.dataScope } })).createRole
          : (await run(UpdateCustomRole, { input: { key: v.key, name: v.name.trim(), permissions: v.permissions, dataScope: v.dataScope } })).updateRole;
      if (result.__typename === "RolePayload") {
        setEditing(null);
        void toast.success(t("roles.saved"));
        await reload();
      } else setSaveError(userErrorText(result as UserErrorData, t));
    } catch (err) {
      setSaveError(errorText(err, t));
    }
  }

  async function remove(key: string) {
    try {
      const result = (await run(DeleteCustomRole, { key })).deleteRole;
      if (result.__typename === "DeleteRolePayload") await reload();
      else void toast.error(userErrorText(result as UserErrorData, t));
    } catch (err) {
      void toast.error(errorText(err, t));
    }
  }

  return (
    <Card title={t("roles.title")} extra={<Button type="primary" onClick={() => open("new")}>{t("roles.create")}</Button>}>
      {holder}
      {error != null && <Alert role="alert" type="error" title={errorText(error, t)} style={{ marginBottom: 16 }} />}
      <Table
        rowKey="key"
        loading={loading}
        dataSource={data?.roles ?? []}
        pagination={false}
        columns={[
          { title: t("roles.name"), render: (_, r) => <>{r.name} {r.builtin && <Tag>{t("roles.builtin")}</Tag>}</> },
          { title: t("roles.key"), dataIndex: "key" },
          { title: t("roles.scope"), render: (_, r) => t(`roles.scope.${r.dataScope as (typeof SCOPES)[number]}`) },
          { title: t("roles.permissions"), render: (_, r) => r.permissions.length },
          {
            key: "actions",
            render: (_, r) =>
              !r.builtin && (
                <Space>
                  <Button size="small" onClick={() => open({ key: r.key, name: r.name, dataScope: r.dataScope, permissions: [...r.permissions] })}>
                    {t("roles.edit")}
                  </Button>
                  <Popconfirm title={t("roles.deleteConfirm")} onConfirm={() => remove(r.key)}>
                    <Button size="small" danger>
                      {t("roles.delete")}
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
        title={editing === "new" ? t("roles.create") : t("roles.edit")}
        onClose={() => setEditing(null)}
        extra={
          <Button type="primary" onClick={() => form.submit()}>
            {t("roles.save")}
          </Button>
        }
      >
        {saveError && <Alert role="alert" type="error" title={saveError} style={{ marginBottom: 16 }} />}
        <Form form={form} layout="vertical" name="role" onFinish={save}>
          <Form.Item
            name="key"
            label={t("roles.key")}
            extra={t("roles.keyHelp")}
            rules={[
              { required: true, message: t("form.required", { field: t("roles.key") }) },
              { pattern: ROLE_KEY_PATTERN, message: t("roles.keyHelp") },
            ]}
          >
            <Input disabled={editing !== "new"} maxLength={64} />
          </Form.Item>
          <Form.Item name="name" label={t("roles.name")} rules={[{ required: true, whitespace: true, message: t("form.required", { field: t("roles.name") }) }]}>
            <Input maxLength={100} />
          </Form.Item>
          <Form.Item name="dataScope" label={t("roles.scope")} extra={t("roles.scopeHelp")}>
            <Radio.Group options={SCOPES.map((s) => ({ value: s, label: t(`roles.scope.${s}`) }))} />
          </Form.Item>
          <Form.Item name="permissions" label={t("roles.permissions")}>
            <Checkbox.Group style={{ width: "100%" }}>
              <Space direction="vertical" style={{ width: "100%" }}>
                {groups.map(([group, permissions]) => (
                  <fieldset key={group} style={{ border: "1px solid #eee", borderRadius: 6, padding: "8px 12px" }}>
                    <legend style={{ fontWeight: 600, fontSize: 14, width: "auto", margin: 0, padding: "0 4px" }}>{group}</legend>
                    <Space direction="vertical">
                      {permissions.map((p) => (
                        <Checkbox key={p.key} value={p.key}>
                          <Typography.Text code>{p.key}</Typography.Text> {p.description}
                        </Checkbox>
                      ))}
                    </Space>
                  </fieldset>
                ))}
              </Space>
            </Checkbox.Group>
          </Form.Item>
        </Form>
      </Drawer>
    </Card>
  );
}
