import { Alert, Button, Form, Input, Typography } from "antd";
import { useState } from "react";
import { Link, useNavigate } from "react-router-dom";
import { execute } from "../../api/client";
import { useAuth } from "../../auth/Auth";
import { AuthCard } from "../../components/AuthCard";
import { errorText, userErrorText, type UserErrorData } from "../../components/errors";
import { useI18n } from "../../i18n/I18n";
import { SignUp } from "../../gql/documents";

/** The gateway's slug rule (tenants/registry.py): checked here first, and again there. */
export const SLUG_PATTERN = /^[a-z](?:[a-z0-9]|-(?!-))*[a-z0-9]$/;
const EMAIL_PATTERN = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const PHONE_PATTERN = /^\+?[0-9][0-9 -]{5,19}$/;

interface SignUpValues {
  tenantName: string;
  tenantSlug: string;
  name: string;
  phone?: string;
  email?: string;
  password: string;
}

// The gateway's names for the fields it can fault, as the form names them.
const FIELDS: Record<string, keyof SignUpValues> = {
  slug: "tenantSlug",
  tenantSlug: "tenantSlug",
  tenant_slug: "tenantSlug",
  tenantName: "tenantName",
  tenant_name: "tenantName",
  name: "name",
  phone: "phone",
  email: "email",
  password: "password",
};

/** An agency signs itself up: the tenant, its first admin, and a session in it. */
export function SignUpPage() {
  const { t, locale } = useI18n();
  const { signedIn } = useAuth();
  const navigate = useNavigate();
  const [form] = Form.useForm<SignUpValues>();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const required = (field: string) => ({ required: true, whitespace: true, message: t("form.required", { field }) });

  async function submit(v: SignUpValues) {
    setBusy(true);
    setError(null);
    try {
      const input = {
        tenantName: v.tenantName.trim(),
        tenantSlug: v.tenantSlug.trim(),
        name: v.name.trim(),
        phone: v.phone?.trim() || null,
        email: v.email?.trim() || null,
        password: v.password,
        locale,
      };
      const result = (await execute(SignUp, { input }, { tenant: null, accessToken: null })).signUp;
      if (result.__typename === "SignUpPayload") {
        signedIn(result.tenant.slug, result.tokens);
        navigate("/", { replace: true });
        return;
      }
      const fault = result as UserErrorData;
      const field = fault.field ? FIELDS[fault.field] : undefined;
      if (field) form.setFields([{ name: field, errors: [userErrorText(fault, t)] }]);
      else setError(userErrorText(fault, t));
    } catch (err) {
      setError(errorText(err, t));
    } finally {
      setBusy(false);
    }
  }

  return (
    <AuthCard
      title={t("signUp.title")}
      extra={
        <Typography.Paragraph style={{ marginTop: 16, marginBottom: 0 }}>
          <Link to="/tenant">{t("signUp.haveAccount")}</Link>
        </Typography.Paragraph>
      }
    >
      {error && <Alert role="alert" type="error" title={error} style={{ marginBottom: 16 }} />}
      <Form form={form} layout="vertical" name="sign-up" onFinish={submit}>
        <Form.Item name="tenantName" label={t("signUp.tenantName")} rules={[required(t("signUp.tenantName"))]}>
          <Input autoFocus autoComplete="organization" maxLength={200} />
        </Form.Item>
        <Form.Item
          name="tenantSlug"
          label={t("signUp.tenantSlug")}
          extra={t("signUp.tenantSlugHelp")}
          rules={[
            required(t("signUp.tenantSlug")),
            { min: 3, max: 40, message: t("signUp.tenantSlugHelp") },
            { pattern: SLUG_PATTERN, message: t("form.slug") },
          ]}
        >
          <Input autoComplete="off" maxLength={40} />
        </Form.Item>
        <Form.Item name="name" label={t("signUp.name")} rules={[required(t("signUp.name"))]}>
          <Input autoComplete="name" maxLength={100} />
        </Form.Item>
        <Form.Item
          name="phone"
          label={t("signUp.phone")}
          dependencies={["email"]}
          rules={[
            { pattern: PHONE_PATTERN, message: t("form.phone") },
            ({ getFieldValue }) => ({
              validator: (_, value?: string) =>
                value?.trim() || getFieldValue("email")?.trim()
                  ? Promise.resolve()
                  : Promise.reject(new Error(t("signUp.contactRequired"))),
            }),
          ]}
        >
          <Input autoComplete="tel" inputMode="tel" />
        </Form.Item>
        <Form.Item name="email" label={t("signUp.email")} rules={[{ pattern: EMAIL_PATTERN, message: t("form.email") }]}>
          <Input autoComplete="email" inputMode="email" />
        </Form.Item>
        <Form.Item
          name="password"
          label={t("signUp.password")}
          rules={[
            required(t("signUp.password")),
            { min: 8, message: t("form.minLength", { field: t("signUp.password"), min: 8 }) },
            { max: 128 },
          ]}
        >
          <Input.Password autoComplete="new-password" />
        </Form.Item>
        <Button type="primary" htmlType="submit" block loading={busy}>
          {t("signUp.submit")}
        </Button>
      </Form>
    </AuthCard>
  );
}
