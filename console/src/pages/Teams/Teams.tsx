import { Alert, Button, Card, Form, Input, Modal, Radio, Select, Space, Table, Tag, message } from "antd";
import { useMemo, useState } from "react";
import { useAuth } from "../../auth/Auth";
import { errorText, userErrorText, type UserErrorData } from "../../components/errors";
import { showOnField } from "../../components/fieldErrors";
import { usePermissions } from "../../components/Permissions";
import { useQuery } from "../../components/useQuery";
import { AddTeamMember, ConsoleTeams, CreateTeam, RemoveTeamMember } from "../../gql/documents";
import { useI18n } from "../../i18n/I18n";

export const KINDS = ["company", "office", "team"] as const;
type Kind = (typeof KINDS)[number];
/** The kind a team of each kind hangs under (api/identity/teams.py). */
const PARENT_KIND: Record<Kind, "company" | "office" | null> = { company: null, office: "company", team: "office" };

interface TeamValues {
  name: string;
  kind: Kind;
  parentId?: string;
}

interface Row {
  id: string;
  name: string;
  kind: string;
  memberIds: string[];
  children?: Row[];
}

/** Companies, offices and teams as a tree, with their members; with team.manage: create one,
 * change a team's members. (The API has no renaming or deleting of teams yet.) */
export function TeamsPage() {
  const { t } = useI18n();
  const { run } = useAuth();
  const { can } = usePermissions();
  const manage = can("team.manage");
  const { data, error, loading, reload } = useQuery(ConsoleTeams, {});
  const [creating, setCreating] = useState(false);
  const [createError, setCreateError] = useState<string | null>(null);
  const [form] = Form.useForm<TeamValues>();
  const kind = Form.useWatch("kind", form);
  const [editing, setEditing] = useState<{ id: string; name: string; before: string[]; after: string[] } | null>(null);
  const [toast, holder] = message.useMessage();

  const names = useMemo(() => new Map((data?.members ?? []).map((m) => [m.account.id, m.account.name])), [data]);
  const tree = useMemo(() => {
    const teams = data?.teams ?? [];
    const byParent = new Map<string | null, Row[]>();
    const ids = new Set(teams.map((x) => x.id));
    for (const x of teams) {
      const parent = x.parentId && ids.has(x.parentId) ? x.parentId : null;
      byParent.set(parent, [...(byParent.get(parent) ?? []), { id: x.id, name: x.name, kind: x.kind, memberIds: x.memberIds }]);
    }
    const attach = (rows: Row[]): Row[] =>
      rows.map((r) => {
        const children = byParent.get(r.id);
        return children ? { ...r, children: attach(children) } : r;
      });
    return attach(byParent.get(null) ?? []);
  }, [data]);

  function openCreate() {
    setCreateError(null);
    form.resetFields();
    setCreating(true);
  }

  async function create(v: TeamValues) {
    setCreateError(null);
    try {
      const input = { name: v.name.trim(), kind: v.kind, parentId: v.kind === "company" ? null : (v.parentId ?? null) };
      const result = (await run(CreateTeam, { input })).createTeam;
      if (result.__typename === "TeamPayload") {
        setCreating(false);
        void toast.success(t("teams.created"));
        await reload();
      } else if (!showOnField(form, result as UserErrorData, { name: "name", kind: "kind", parentId: "parentId" }, t)) {
        setCreateError(userErrorText(result as UserErrorData, t));
      }
    } catch (err) {
      setCreateError(errorText(err, t));
    }
  }

  async function saveMembers() {
    if (!editing) return;
    const added = editing.after.filter((id) => !editing.before.includes(id));
    const removed = editing.before.filter((id) => !editing.after.includes(id));
    try {
      const results = [];
      for (const accountId of added) results.push((await run(AddTeamMember, { teamId: editing.id, accountId })).addTeamMember);
      for (const accountId of removed) results.push((await run(RemoveTeamMember, { teamId: editing.id, accountId })).removeTeamMember);
      const failed = results.find((r) => r.__typename !== "TeamMembershipPayload");
      if (failed) {
        void toast.error(userErrorText(failed as UserErrorData, t));
        await reload();
        return;
      }
      setEditing(null);
      void toast.success(t("teams.membersSaved"));
      await reload();
    } catch (err) {
      void toast.error(errorText(err, t));
    }
  }

  const parentKind = kind ? PARENT_KIND[kind] : null;
  const parents = (data?.teams ?? []).filter((x) => x.kind === parentKind);
  return (
    <Card
      title={t("teams.title")}
      extra={
        manage && (
          <Button type="primary" onClick={openCreate}>
            {t("teams.create")}
          </Button>
        )
      }
    >
      {holder}
      {error != null && <Alert role="alert" type="error" title={errorText(error, t)} style={{ marginBottom: 16 }} />}
      <Table<Row>
        rowKey="id"
        loading={loading}
        dataSource={tree}
        pagination={false}
        expandable={{ expandedRowKeys: (data?.teams ?? []).map((x) => x.id), showExpandColumn: false }}
        columns={[
          { title: t("teams.name"), dataIndex: "name" },
          {
            title: t("teams.kind"),
            dataIndex: "kind",
            render: (k: string) => <Tag>{(KINDS as readonly string[]).includes(k) ? t(`teams.kind.${k as Kind}`) : k}</Tag>,
          },
          {
            title: t("teams.members"),
            render: (_, r) => r.memberIds.map((id) => <Tag key={id}>{names.get(id) ?? id}</Tag>),
          },
          {
            key: "actions",
            render: (_, r) =>
              manage && (
                <Button
                  size="small"
                  aria-label={`${t("teams.editMembers")}: ${r.name}`}
                  onClick={() => setEditing({ id: r.id, name: r.name, before: r.memberIds, after: [...r.memberIds] })}
                >
                  {t("teams.editMembers")}
                </Button>
              ),
          },
        ]}
      />
      <Modal
        open={creating}
        title={t("teams.create")}
        okText={t("teams.createOk")}
        cancelText={t("common.cancel")}
        onCancel={() => setCreating(false)}
        onOk={() => form.submit()}
        destroyOnHidden
      >
        {createError && <Alert role="alert" type="error" title={createError} style={{ marginBottom: 16 }} />}
        <Form form={form} layout="vertical" name="team" onFinish={create} initialValues={{ kind: "team" }}>
          <Form.Item
            name="name"
            label={t("teams.name")}
            rules={[
              { required: true, whitespace: true, message: t("form.required", { field: t("teams.name") }) },
              { max: 100, message: t("form.maxLength", { field: t("teams.name"), max: 100 }) },
            ]}
          >
            <Input />
          </Form.Item>
          <Form.Item name="kind" label={t("teams.kind")}>
            <Radio.Group
              onChange={() => form.setFieldValue("parentId", undefined)}
              options={KINDS.map((k) => ({ value: k, label: t(`teams.kind.${k}`) }))}
            />
          </Form.Item>
          {parentKind && (
            <Form.Item
              name="parentId"
              label={t(`teams.parent.${parentKind}`)}
              rules={[{ required: true, message: t("form.required", { field: t(`teams.parent.${parentKind}`) }) }]}
            >
              <Select options={parents.map((p) => ({ value: p.id, label: p.name }))} notFoundContent={t("teams.noParent")} />
            </Form.Item>
          )}
        </Form>
      </Modal>
      <Modal
        open={editing !== null}
        title={`${t("teams.editMembers")}: ${editing?.name ?? ""}`}
        okText={t("common.ok")}
        cancelText={t("common.cancel")}
        onCancel={() => setEditing(null)}
        onOk={() => void saveMembers()}
      >
        <Space direction="vertical" style={{ width: "100%" }}>
          <label htmlFor="team-members">{t("teams.members")}</label>
          <Select
            id="team-members"
            mode="multiple"
            style={{ width: "100%" }}
            value={editing?.after ?? []}
            onChange={(after: string[]) => setEditing((e) => (e ? { ...e, after } : e))}
            optionFilterProp="label"
            options={(data?.members ?? [])
              .filter((m) => m.status === "active" || editing?.before.includes(m.account.id))
              .map((m) => ({ value: m.account.id, label: m.account.name }))}
          />
        </Space>
      </Modal>
    </Card>
  );
}
