import { UploadOutlined } from "@ant-design/icons";
import { Alert, Button, Card, Descriptions, Space, Table, Typography, Upload } from "antd";
import { useState } from "react";
import { useAuth } from "../../auth/Auth";
import { errorText, userErrorText, type UserErrorData } from "../../components/errors";
import { ImportUnits } from "../../gql/documents";
import type { ImportUnitsMutation } from "../../gql/types";
import { useI18n } from "../../i18n/I18n";
import { executeUpload } from "./upload";

type Report = Extract<ImportUnitsMutation["importUnits"], { __typename: "ImportReport" }>;

const MAX_BYTES = 10 * 1024 * 1024; // the gateway's limit (docs/inventory.md)

/** Import a project's units from CSV or XLSX; the report lists the rows refused. */
export function ImportUnitsCard({ projectId, onImported }: { projectId: string; onImported: () => void }) {
  const { t } = useI18n();
  const { tenant, tokens } = useAuth();
  const [file, setFile] = useState<File | null>(null);
  const [busy, setBusy] = useState(false);
  const [report, setReport] = useState<Report | null>(null);
  const [failure, setFailure] = useState<string | null>(null);

  async function send() {
    if (!file) return;
    setBusy(true);
    setFailure(null);
    setReport(null);
    try {
      const result = (
        await executeUpload(ImportUnits, { projectId, file: null as unknown as File }, "file", file, {
          tenant,
          accessToken: tokens?.accessToken ?? null,
        })
      ).importUnits;
      if (result.__typename === "ImportReport") {
        setReport(result);
        if (result.imported > 0) onImported();
      } else setFailure(userErrorText(result as UserErrorData, t));
    } catch (err) {
      setFailure(errorText(err, t));
    } finally {
      setBusy(false);
    }
  }

  return (
    <Card title={t("inv.import.title")}>
      <Typography.Paragraph type="secondary">{t("inv.import.help")}</Typography.Paragraph>
      <Space>
        <Upload
          accept=".csv,.xlsx,text/csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
          maxCount={1}
          beforeUpload={(f) => {
            if (f.size > MAX_BYTES) {
              setFailure(t("inv.import.tooLarge"));
              return Upload.LIST_IGNORE;
            }
            setFailure(null);
            setFile(f);
            return false;
          }}
          onRemove={() => setFile(null)}
        >
          <Button icon={<UploadOutlined />}>{t("inv.import.choose")}</Button>
        </Upload>
        <Button type="primary" disabled={!file} loading={busy} onClick={() => void send()}>
          {t("inv.import.send")}
        </Button>
      </Space>
      {failure && <Alert role="alert" type="error" title={failure} style={{ marginTop: 16 }} />}
      {report && (
        <div data-testid="import-report" style={{ marginTop: 16 }}>
          <Descriptions size="small" bordered column={4}>
            <Descriptions.Item label={t("inv.import.rows")}>{report.rowsTotal}</Descriptions.Item>
            <Descriptions.Item label={t("inv.import.imported")}>{report.imported}</Descriptions.Item>
            <Descriptions.Item label={t("inv.import.skipped")}>{report.skipped}</Descriptions.Item>
            <Descriptions.Item label={t("inv.import.failed")}>{report.failed}</Descriptions.Item>
          </Descriptions>
          {report.errors.length > 0 && (
            <Table
              style={{ marginTop: 16 }}
              size="small"
              rowKey={(e) => `${e.row}:${e.field}:${e.message}`}
              dataSource={report.errors}
              pagination={report.errors.length > 20 ? { pageSize: 20 } : false}
              columns={[
                { title: t("inv.import.row"), dataIndex: "row" },
                { title: t("inv.import.column"), dataIndex: "field" },
                { title: t("inv.import.reason"), dataIndex: "message" },
              ]}
            />
          )}
        </div>
      )}
    </Card>
  );
}
