import { Alert, Button, Card, Form, Input, Modal, Select, Table } from "antd";
import { useState } from "react";
import { Link } from "react-router-dom";
import { useAuth } from "../../auth/Auth";
import { errorText, userErrorText, type UserErrorData } from "../../components/errors";
import { useQuery } from "../../components/useQuery";
import { ConsoleProjects, CreateProject } from "../../gql/documents";
import { useFormat } from "../../i18n/format";
import { useI18n } from "../../i18n/I18n";

interface ProjectValues {
  name: string;
  city?: string;
  district?: string;
  address?: string;
  latitude?: string;
  longitude?: string;
  facilities?: string[];
  surroundings?: string;
}

const COORDINATE = /^-?\d{1,3}(\.\d{1,8})?$/;

/** Projects (ordered by id) with their buildings and unit types counted; create one. */
export function ProjectsPage() {
  const { t } = useI18n();
  const fmt = useFormat();
  const { run } = useAuth();
  const { data, error, loading, reload } = useQuery(ConsoleProjects, { first: 200 });
  const [creating, setCreating] = useState(false);
  const [createError, setCreateError] = useState<string | null>(null);
  const [form] = Form.useForm<ProjectValues>();

  async function create(v: ProjectValues) {
    setCreateError(null);
    try {
      const input = {
        name: v.name.trim(),
        city: v.city?.trim() ?? "",
        district: v.district?.trim() ?? "",
        address: v.address?.trim() ?? "",
        latitude: v.latitude?.trim() || null,
        longitude: v.longitude?.trim() || null,
        facilities: (v.facilities ?? []).map((f) => f.trim()).filter(Boolean),
        surroundings: v.surroundings?.trim() ?? "",
      };
      const result = (await run(CreateProject, { input })).createProject;
      if (result.__typename === "ProjectPayload") {
        setCreating(false);
        form.resetFields();
        await reload();
      } else {
        const err = result as UserErrorData;
        if (err.field && err.field in input) {
          form.setFields([{ name: err.field as keyof ProjectValues, errors: [userErrorText(err, t)] }]);
        } else setCreateError(userErrorText(err, t));
      }
    } catch (err) {
      setCreateError(errorText(err, t));
    }
  }

  const coordinate = (field: string) => ({
    validator: (_: unknown, value?: string) =>
      !value || COORDINATE.test(value.trim()) ? Promise.resolve() : Promise.reject(new Error(t("inv.form.number", { field }))),
  });
  return (
    <Card
      title={t("inv.projects.title")}
      extra={
        <Button type="primary" onClick={() => setCreating(true)}>
          {t("inv.projects.create")}
        </Button>
      }
    >
      {error != null && <Alert role="alert" type="error" title={errorText(error, t)} style={{ marginBottom: 16 }} />}
      <Table
        rowKey="id"
        loading={loading}
        dataSource={data?.projects ?? []}
        columns={[
          { title: t("inv.project.name"), render: (_, p) => <Link to={`/projects/${p.id}`}>{p.name}</Link> },
          { title: t("inv.project.city"), dataIndex: "city" },
          { title: t("inv.project.district"), dataIndex: "district" },
          { title: t("inv.project.address"), dataIndex: "address" },
          { title: t("inv.buildings"), render: (_, p) => p.buildings.length },
          { title: t("inv.unitTypes"), render: (_, p) => p.unitTypes.length },
          { title: t("inv.createdAt"), render: (_, p) => fmt.dateTime(p.createdAt) },
        ]}
      />
      <Modal
        open={creating}
        title={t("inv.projects.create")}
        okText={t("inv.save")}
        cancelText={t("common.cancel")}
        onCancel={() => setCreating(false)}
        onOk={() => form.submit()}
        destroyOnHidden
      >
        {createError && <Alert role="alert" type="error" title={createError} style={{ marginBottom: 16 }} />}
        <Form form={form} layout="vertical" name="project" onFinish={create}>
          <Form.Item
            name="name"
            label={t("inv.project.name")}
            rules={[
              { required: true, whitespace: true, message: t("form.required", { field: t("inv.project.name") }) },
              { max: 200, message: t("inv.form.tooLong", { field: t("inv.project.name"), max: 200 }) },
            ]}
          >
            <Input />
          </Form.Item>
          <Form.Item name="city" label={t("inv.project.city")}>
            <Input />
          </Form.Item>
          <Form.Item name="district" label={t("inv.project.district")}>
            <Input />
          </Form.Item>
          <Form.Item name="address" label={t("inv.project.address")}>
            <Input />
          </Form.Item>
          <Form.Item name="latitude" label={t("inv.project.latitude")} rules={[coordinate(t("inv.project.latitude"))]}>
            <Input inputMode="decimal" />
          </Form.Item>
          <Form.Item name="longitude" label={t("inv.project.longitude")} rules={[coordinate(t("inv.project.longitude"))]}>
            <Input inputMode="decimal" />
          </Form.Item>
          <Form.Item name="facilities" label={t("inv.project.facilities")}>
            <Select mode="tags" open={false} tokenSeparators={[",", "，"]} />
          </Form.Item>
          <Form.Item name="surroundings" label={t("inv.project.surroundings")}>
            <Input.TextArea rows={2} />
          </Form.Item>
        </Form>
      </Modal>
    </Card>
  );
}
