import { Alert, Card, Descriptions, Skeleton, Tag, Typography } from "antd";
import { errorText } from "../../components/errors";
import { useViewer } from "../../components/Permissions";
import { useI18n } from "../../i18n/I18n";

export function HomePage() {
  const { t } = useI18n();
  const { data, error, loading } = useViewer(); // read once by the layout (ConsoleViewer)
  if (error) return <Alert role="alert" type="error" title={errorText(error, t)} />;
  if (loading || !data) return <Skeleton active />;
  const me = data.me;
  return (
    <Card>
      <Typography.Title level={2} data-testid="welcome">
        {t("home.welcome", { name: me.account.name })}
      </Typography.Title>
      {me.totpEnrollmentRequired && <Alert type="warning" title={t("home.totpRequired")} style={{ marginBottom: 16 }} />}
      <Descriptions column={1} bordered>
        <Descriptions.Item label={t("home.tenant")}>
          {me.tenant.name} ({me.tenant.slug})
        </Descriptions.Item>
        <Descriptions.Item label={t("home.roles")}>
          {me.roles.map((r) => (
            <Tag key={r}>{r}</Tag>
          ))}
        </Descriptions.Item>
        <Descriptions.Item label={t("home.plan")}>{me.tenant.plan}</Descriptions.Item>
      </Descriptions>
    </Card>
  );
}
