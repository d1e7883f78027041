import { Alert, Button, Card, Table, Tag, message } from "antd";
import { useAuth } from "../../auth/Auth";
import { errorText } from "../../components/errors";
import { useQuery } from "../../components/useQuery";
import { ConsoleSessions, EndSession } from "../../gql/documents";
import { useI18n } from "../../i18n/I18n";

/** The member's live sessions; any but this one can be ended here. */
export function SessionsPage() {
  const { t, formatDateTime } = useI18n();
  const { run } = useAuth();
  const { data, error, loading, reload } = useQuery(ConsoleSessions, {});
  const [toast, holder] = message.useMessage();

  async function end(id: string) {
    try {
      await run(EndSession, { id });
      void toast.success(t("sessions.ended"));
      await reload();
    } catch (err) {
      void toast.error(errorText(err, t));
    }
  }

  return (
    <Card title={t("sessions.title")} extra={<Button onClick={() => void reload()}>{t("common.refresh")}</Button>}>
      {holder}
      {error != null && <Alert role="alert" type="error" title={errorText(error, t)} style={{ marginBottom: 16 }} />}
      <Table
        rowKey="id"
        loading={loading}
        dataSource={data?.mySessions ?? []}
        pagination={false}
        columns={[
          {
            title: t("sessions.device"),
            dataIndex: "userAgent",
            render: (ua: string, s) => (
              <>
                {ua || "—"} {s.current && <Tag color="blue">{t("sessions.current")}</Tag>}
              </>
            ),
          },
          { title: t("sessions.ip"), dataIndex: "ip" },
          { title: t("sessions.started"), dataIndex: "startedAt", render: formatDateTime },
          { title: t("sessions.lastUsed"), dataIndex: "lastUsedAt", render: formatDateTime },
          {
            key: "end",
            render: (_, s) =>
              !s.current && (
                <Button danger size="small" onClick={() => void end(s.id)}>
                  {t("sessions.end")}
                </Button>
              ),
          },
        ]}
      />
    </Card>
  );
}
