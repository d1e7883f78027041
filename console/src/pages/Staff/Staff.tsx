import { Alert, Button, Card, Form, Input, Modal, Popconfirm, Select, Space, Table, Tag, message } from "antd";
import { useState } from "react";
import { useAuth } from "../../auth/Auth";
import { errorText, userErrorText, type UserErrorData } from "../../components/errors";
import { useQuery } from "../../components/useQuery";
import { AssignStaffRoles, DisableStaff, InviteStaff, StaffMembers } from "../../gql/documents";
import { useI18n } from "../../i18n/I18n";

interface InviteValues {
  name: string;
  phone?: string;
  email?: string;
  roles: string[];
}

/** Members with their roles; invite a new one, disable one; pending invitations. */
export function StaffPage() {
  const { t, formatDateTime } = useI18n();
  const { run } = useAuth();
  const { data, error, loading, reload } = useQuery(StaffMembers, {});
  const [inviting, setInviting] = useState(false);
  const [inviteError, setInviteError] = useState<string | null>(null);
  const [form] = Form.useForm<InviteValues>();
  const [toast, holder] = message.useMessage();
  const [assigning, setAssigning] = useState<{ accountId: string; name: string; roles: string[] } | null>(null);

  async function assign() {
    if (!assigning) return;
    try {
      const result = (await run(AssignStaffRoles, { accountId: assigning.accountId, roles: assigning.roles })).assignRoles;
      if (result.__typename === "MemberPayload") {
        setAssigning(null);
        void toast.success(t("staff.rolesSaved"));
        await reload();
      } else void toast.error(userErrorText(result as UserErrorData, t));
    } catch (err) {
      void toast.error(errorText(err, t));
    }
  }

  async function invite(v: InviteValues) {
    setInviteError(null);
    try {
      const input = { name: v.name.trim(), roles: v.roles, phone: v.phone?.trim() || null, email: v.email?.trim() || null };
      const result = (await run(InviteStaff, { input })).inviteMember;
      if (result.__typename === "InvitationPayload") {
        setInviting(false);
        form.resetFields();
        void toast.success(t("staff.invited"));
        await reload();
      } else setInviteError(userErrorText(result as UserErrorData, t));
    } catch (err) {
      setInviteError(errorText(err, t));
    }
  }

  async function disable(accountId: string) {
    try {
      const result = (await run(DisableStaff, { accountId })).disableMember;
      if (result.__typename === "MemberPayload") await reload();
      else void toast.error(userErrorText(result as UserErrorData, t));
    } catch (err) {
      void toast.error(errorText(err, t));
    }
  }

  const roleNames = new Map((data?.roles ?? []).map((r) => [r.key, r.name]));
  return (
    <Space direction="vertical" size="large" style={{ width: "100%" }}>
      {holder}
      <Card
        title={t("staff.title")}
        extra={
          <Button type="primary" onClick={() => setInviting(true)}>
            {t("staff.invite")}
          </Button>
        }
      >
        {error != null && <Alert role="alert" type="error" title={errorText(error, t)} style={{ marginBottom: 16 }} />}
        <Table
          rowKey={(m) => m.account.id}
          loading={loading}
          dataSource={data?.members ?? []}
          columns={[
            { title: t("staff.name"), render: (_, m) => m.account.name },
            { title: t("staff.contact"), render: (_, m) => [m.account.phone, m.account.email].filter(Boolean).join(" / ") },
            {
              title: t("staff.roles"),
              render: (_, m) => m.roles.map((r) => <Tag key={r}>{roleNames.get(r) ?? r}</Tag>),
            },
            {
              title: t("staff.status"),
              dataIndex: "status",
              render: (status: string) =>
                status === "active" || status === "disabled" ? t(`staff.status.${status}`) : status,
            },
            {
              key: "actions",
              render: (_, m) =>
                m.status === "active" && (
                  <Space>
                    <Button size="small" onClick={() => setAssigning({ accountId: m.account.id, name: m.account.name, roles: [...m.roles] })}>
                      {t("staff.editRoles")}
                    </Button>
                    <Popconfirm title={t("staff.disableConfirm")} onConfirm={() => disable(m.account.id)}>
                      <Button danger size="small">
                        {t("staff.disable")}
                      </Button>
                    </Popconfirm>
                  </Space>
                ),
            },
          ]}
        />
      </Card>
      <Card title={t("staff.invitations")}>
        <Table
          rowKey="id"
          loading={loading}
          dataSource={data?.invitations ?? []}
          pagination={false}
          columns={[
            { title: t("staff.name"), dataIndex: "name" },
            { title: t("staff.contact"), render: (_, i) => [i.phone, i.email].filter(Boolean).join(" / ") },
            { title: t("staff.roles"), render: (_, i) => i.roles.map((r) => <Tag key={r}>{roleNames.get(r) ?? r}</Tag>) },
            { title: t("staff.expires"), dataIndex: "expiresAt", render: formatDateTime },
          ]}
        />
      </Card>
      <Modal
        open={assigning !== null}
        title={`${t("staff.editRoles")}: ${assigning?.name ?? ""}`}
        okText={t("common.ok")}
        cancelText={t("common.cancel")}
        onCancel={() => setAssigning(null)}
        onOk={() => void assign()}
        okButtonProps={{ disabled: !assigning?.roles.length }}
      >
        <Select
          mode="multiple"
          aria-label={t("staff.roles")}
          style={{ width: "100%" }}
          value={assigning?.roles ?? []}
          onChange={(roles: string[]) => setAssigning((a) => (a ? { ...a, roles } : a))}
          options={(data?.roles ?? []).map((r) => ({ value: r.key, label: r.name }))}
        />
      </Modal>
      <Modal
        open={inviting}
        title={t("staff.invite")}
        okText={t("staff.invite")}
        cancelText={t("common.cancel")}
        onCancel={() => setInviting(false)}
        onOk={() => form.submit()}
        destroyOnHidden
      >
        {inviteError && <Alert role="alert" type="error" title={inviteError} style={{ marginBottom: 16 }} />}
        <Form form={form} layout="vertical" name="invite" onFinish={invite} initialValues={{ roles: ["agent"] }}>
          <Form.Item name="name" label={t("staff.name")} rules={[{ required: true, whitespace: true, message: t("form.required", { field: t("staff.name") }) }]}>
            <Input />
          </Form.Item>
          <Form.Item name="phone" label={t("signUp.phone")}>
            <Input inputMode="tel" />
          </Form.Item>
          <Form.Item name="email" label={t("signUp.email")}>
            <Input inputMode="email" />
          </Form.Item>
          <Form.Item name="roles" label={t("staff.roles")} rules={[{ required: true, message: t("form.required", { field: t("staff.roles") }) }]}>
            <Select mode="multiple" options={(data?.roles ?? []).map((r) => ({ value: r.key, label: r.name }))} />
          </Form.Item>
        </Form>
      </Modal>
    </Space>
  );
}
