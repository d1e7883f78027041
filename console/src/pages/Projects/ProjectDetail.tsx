import { Alert, Button, Card, Descriptions, Form, Input, InputNumber, Modal, Select, Skeleton, Space, Table, Tabs, Tag } from "antd";
import { useState } from "react";
import { Link, useParams } from "react-router-dom";
import { useAuth } from "../../auth/Auth";
import { errorText, userErrorText, type UserErrorData } from "../../components/errors";
import { useQuery } from "../../components/useQuery";
import { ConsoleProject, CreateBuilding, CreateUnitType } from "../../gql/documents";
import { useFormat } from "../../i18n/format";
import { useI18n } from "../../i18n/I18n";
import { ImportUnitsCard } from "./ImportUnits";
import { PriceAdjustmentsCard } from "./PriceAdjustments";

const ORIENTATIONS = ["N", "NE", "E", "SE", "S", "SW", "W", "NW", "NS", "EW"];
const AREA = /^\d{1,6}(\.\d{1,2})?$/;

interface BuildingValues {
  name: string;
  floors: number;
}

interface UnitTypeValues {
  name: string;
  rooms: number;
  livingRooms?: number;
  bathrooms?: number;
  grossArea: string;
  netArea?: string;
  orientation?: string;
  layout?: string;
}

/** A project: its facts, buildings (each with its sales table and units), unit types, price
 * adjustments and unit imports. */
export function ProjectDetailPage() {
  const { id = "" } = useParams();
  const { t } = useI18n();
  const fmt = useFormat();
  const { run } = useAuth();
  const { data, error, loading, reload } = useQuery(ConsoleProject, { id });
  const [dialog, setDialog] = useState<"building" | "unitType" | null>(null);
  const [dialogError, setDialogError] = useState<string | null>(null);
  const [buildingForm] = Form.useForm<BuildingValues>();
  const [typeForm] = Form.useForm<UnitTypeValues>();

  if (error) return <Alert role="alert" type="error" title={errorText(error, t)} />;
  if (loading && !data) return <Skeleton active />;
  const project = data?.project;
  if (!project) return <Alert role="alert" type="warning" title={t("inv.notFound")} />;
  const can = new Set(data?.me.permissions ?? []);

  async function settle(result: { __typename: string }, ok: string, form: { setFields: (f: never[]) => void }) {
    if (result.__typename === ok) {
      setDialog(null);
      await reload();
      return;
    }
    const err = result as UserErrorData;
    if (err.field && err.field !== "projectId") {
      form.setFields([{ name: err.field, errors: [userErrorText(err, t)] }] as never[]);
    } else setDialogError(userErrorText(err, t));
  }

  async function createBuilding(v: BuildingValues) {
    setDialogError(null);
    try {
      const input = { projectId: id, name: v.name.trim(), floors: v.floors };
      await settle((await run(CreateBuilding, { input })).createBuilding, "BuildingPayload", buildingForm);
    } catch (err) {
      setDialogError(errorText(err, t));
    }
  }

  async function createUnitType(v: UnitTypeValues) {
    setDialogError(null);
    try {
      const input = {
        projectId: id,
        name: v.name.trim(),
        rooms: v.rooms,
        livingRooms: v.livingRooms ?? 1,
        bathrooms: v.bathrooms ?? 1,
        grossArea: v.grossArea.trim(),
        netArea: v.netArea?.trim() || null,
        orientation: v.orientation ?? null,
        layout: v.layout?.trim() ?? "",
      };
      await settle((await run(CreateUnitType, { input })).createUnitType, "UnitTypePayload", typeForm);
    } catch (err) {
      setDialogError(errorText(err, t));
    }
  }

  function open(which: "building" | "unitType") {
    setDialogError(null);
    setDialog(which);
  }

  const area = (field: string, required: boolean) => ({
    validator: (_: unknown, value?: string) =>
      !value?.trim()
        ? required
          ? Promise.reject(new Error(t("form.required", { field })))
          : Promise.resolve()
        : AREA.test(value.trim()) && Number(value) > 0
          ? Promise.resolve()
          : Promise.reject(new Error(t("inv.form.area", { field }))),
  });

  const buildings = (
    <Card
      title={t("inv.buildings")}
      extra={
        can.has("project.write") && (
          <Button type="primary" onClick={() => open("building")}>
            {t("inv.building.create")}
          </Button>
        )
      }
    >
      <Table
        rowKey="id"
        pagination={false}
        dataSource={project.buildings}
        columns={[
          { title: t("inv.building.name"), dataIndex: "name" },
          { title: t("inv.building.floors"), dataIndex: "floors" },
          { title: t("inv.createdAt"), render: (_, b) => fmt.dateTime(b.createdAt) },
          {
            key: "links",
            render: (_, b) => (
              <Space>
                <Link to={`/buildings/${b.id}/sales-table`}>{t("inv.salesTable")}</Link>
                <Link to={`/units?project=${project.id}&building=${b.id}`}>{t("inv.units")}</Link>
              </Space>
            ),
          },
        ]}
      />
    </Card>
  );

  const unitTypes = (
    <Card
      title={t("inv.unitTypes")}
      extra={
        can.has("unit.write") && (
          <Button type="primary" onClick={() => open("unitType")}>
            {t("inv.unitType.create")}
          </Button>
        )
      }
    >
      <Table
        rowKey="id"
        pagination={false}
        dataSource={project.unitTypes}
        columns={[
          { title: t("inv.unitType.name"), dataIndex: "name" },
          {
            title: t("inv.unitType.layout"),
            render: (_, u) => t("inv.unitType.rooms", { rooms: u.rooms, living: u.livingRooms, baths: u.bathrooms }),
          },
          { title: t("inv.grossArea"), render: (_, u) => fmt.area(u.grossArea) },
          { title: t("inv.netArea"), render: (_, u) => fmt.area(u.netArea) },
          { title: t("inv.orientation"), render: (_, u) => (u.orientation ? t(`inv.orientation.${u.orientation}` as never) : "—") },
        ]}
      />
    </Card>
  );

  return (
    <Space orientation="vertical" size="large" style={{ width: "100%" }}>
      <Card title={project.name} extra={<Link to="/projects">{t("inv.projects.title")}</Link>}>
        <Descriptions column={2} size="small">
          <Descriptions.Item label={t("inv.project.city")}>{project.city || "—"}</Descriptions.Item>
          <Descriptions.Item label={t("inv.project.district")}>{project.district || "—"}</Descriptions.Item>
          <Descriptions.Item label={t("inv.project.address")}>{project.address || "—"}</Descriptions.Item>
          <Descriptions.Item label={t("inv.project.coordinates")}>
            {project.latitude && project.longitude ? `${project.latitude}, ${project.longitude}` : "—"}
          </Descriptions.Item>
          <Descriptions.Item label={t("inv.project.facilities")}>
            {project.facilities.length ? project.facilities.map((f) => <Tag key={f}>{f}</Tag>) : "—"}
          </Descriptions.Item>
          <Descriptions.Item label={t("inv.createdAt")}>{fmt.dateTime(project.createdAt)}</Descriptions.Item>
          {project.surroundings && (
            <Descriptions.Item label={t("inv.project.surroundings")} span={2}>
              {project.surroundings}
            </Descriptions.Item>
          )}
        </Descriptions>
      </Card>
      <Tabs
        items={[
          { key: "buildings", label: t("inv.buildings"), children: buildings },
          { key: "unitTypes", label: t("inv.unitTypes"), children: unitTypes },
          ...(can.has("unit.price.adjust")
            ? [
                {
                  key: "prices",
                  label: t("inv.prices.title"),
                  children: <PriceAdjustmentsCard project={project} permissions={can} />,
                },
              ]
            : []),
          ...(can.has("unit.write")
            ? [{ key: "import", label: t("inv.import.title"), children: <ImportUnitsCard projectId={project.id} onImported={reload} /> }]
            : []),
        ]}
      />
      <Modal
        open={dialog === "building"}
        title={t("inv.building.create")}
        okText={t("inv.save")}
        cancelText={t("common.cancel")}
        onCancel={() => setDialog(null)}
        onOk={() => buildingForm.submit()}
        destroyOnHidden
      >
        {dialog === "building" && dialogError && <Alert role="alert" type="error" title={dialogError} style={{ marginBottom: 16 }} />}
        <Form form={buildingForm} layout="vertical" name="building" onFinish={createBuilding}>
          <Form.Item
            name="name"
            label={t("inv.building.name")}
            rules={[{ required: true, whitespace: true, message: t("form.required", { field: t("inv.building.name") }) }]}
          >
            <Input />
          </Form.Item>
          <Form.Item
            name="floors"
            label={t("inv.building.floors")}
            rules={[{ required: true, message: t("form.required", { field: t("inv.building.floors") }) }]}
          >
            <InputNumber min={1} max={200} precision={0} style={{ width: "100%" }} />
          </Form.Item>
        </Form>
      </Modal>
      <Modal
        open={dialog === "unitType"}
        title={t("inv.unitType.create")}
        okText={t("inv.save")}
        cancelText={t("common.cancel")}
        onCancel={() => setDialog(null)}
        onOk={() => typeForm.submit()}
        destroyOnHidden
      >
        {dialog === "unitType" && dialogError && <Alert role="alert" type="error" title={dialogError} style={{ marginBottom: 16 }} />}
        <Form form={typeForm} layout="vertical" name="unitType" onFinish={createUnitType} initialValues={{ livingRooms: 1, bathrooms: 1 }}>
          <Form.Item
            name="name"
            label={t("inv.unitType.name")}
            rules={[{ required: true, whitespace: true, message: t("form.required", { field: t("inv.unitType.name") }) }]}
          >
            <Input />
          </Form.Item>
          <Space wrap>
            <Form.Item name="rooms" label={t("inv.rooms")} rules={[{ required: true, message: t("form.required", { field: t("inv.rooms") }) }]}>
              <InputNumber min={0} max={20} precision={0} />
            </Form.Item>
            <Form.Item name="livingRooms" label={t("inv.livingRooms")}>
              <InputNumber min={0} max={20} precision={0} />
            </Form.Item>
            <Form.Item name="bathrooms" label={t("inv.bathrooms")}>
              <InputNumber min={0} max={20} precision={0} />
            </Form.Item>
          </Space>
          <Form.Item name="grossArea" label={`${t("inv.grossArea")} (m²)`} rules={[area(t("inv.grossArea"), true)]}>
            <Input inputMode="decimal" />
          </Form.Item>
          <Form.Item name="netArea" label={`${t("inv.netArea")} (m²)`} rules={[area(t("inv.netArea"), false)]}>
            <Input inputMode="decimal" />
          </Form.Item>
          <Form.Item name="orientation" label={t("inv.orientation")}>
            <Select allowClear options={ORIENTATIONS.map((o) => ({ value: o, label: t(`inv.orientation.${o}` as never) }))} />
          </Form.Item>
          <Form.Item name="layout" label={t("inv.unitType.description")}>
            <Input />
          </Form.Item>
        </Form>
      </Modal>
    </Space>
  );
}
