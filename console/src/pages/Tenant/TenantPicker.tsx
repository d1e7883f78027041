import { Button, Form, Input, Space, Tag, Typography } from "antd";
import { Link, useNavigate } from "react-router-dom";
import { recentTenants, useAuth } from "../../auth/Auth";
import { AuthCard } from "../../components/AuthCard";
import { useI18n } from "../../i18n/I18n";
import { SLUG_PATTERN } from "../SignUp/SignUp";

/** Which company to sign in to (skipped when the subdomain names it). */
export function TenantPicker() {
  const { t } = useI18n();
  const { chooseTenant, tenant } = useAuth();
  const navigate = useNavigate();
  const pick = (slug: string) => {
    chooseTenant(slug);
    navigate("/sign-in");
  };
  const recent = recentTenants();
  return (
    <AuthCard title={t("tenant.title")}>
      <Form layout="vertical" initialValues={{ slug: tenant ?? "" }} onFinish={(v: { slug: string }) => pick(v.slug.trim())}>
        <Form.Item
          name="slug"
          label={t("tenant.slug")}
          extra={t("tenant.slugHelp")}
          rules={[
            { required: true, message: t("form.required", { field: t("tenant.slug") }) },
            { pattern: SLUG_PATTERN, message: t("form.slug") },
          ]}
        >
          <Input autoFocus autoComplete="organization" />
        </Form.Item>
        <Button type="primary" htmlType="submit" block>
          {t("tenant.continue")}
        </Button>
      </Form>
      {recent.length > 0 && (
        <Space wrap style={{ marginTop: 16 }}>
          <Typography.Text type="secondary">{t("tenant.recent")}</Typography.Text>
          {recent.map((slug) => (
            <Tag.CheckableTag key={slug} checked={false} onChange={() => pick(slug)}>
              {slug}
            </Tag.CheckableTag>
          ))}
        </Space>
      )}
      <Typography.Paragraph style={{ marginTop: 16, marginBottom: 0 }}>
        {t("tenant.noAccount")} <Link to="/sign-up">{t("tenant.signUp")}</Link>
      </Typography.Paragraph>
    </AuthCard>
  );
}
