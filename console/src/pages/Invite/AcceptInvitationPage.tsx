import { Alert, Button, Form, Input } from "antd";
import { useState } from "react";
import { useNavigate, useSearchParams } from "react-router-dom";
import { execute } from "../../api/client";
import { useAuth } from "../../auth/Auth";
import { AuthCard } from "../../components/AuthCard";
import { errorText, userErrorText, type UserErrorData } from "../../components/errors";
import { useI18n } from "../../i18n/I18n";
import { AcceptInvitation } from "../../gql/documents";

/** Where the invitation link lands (/invite?tenant=…&token=… redirects here). */
export function AcceptInvitationPage() {
  const { t } = useI18n();
  const { signedIn } = useAuth();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const tenant = params.get("tenant");
  const token = params.get("token");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  if (!tenant || !token) {
    return (
      <AuthCard title={t("invite.title")}>
        <Alert role="alert" type="error" title={t("invite.missing")} />
      </AuthCard>
    );
  }

  async function submit(v: { password: string; name?: string }) {
    setBusy(true);
    setError(null);
    try {
      const result = (
        await execute(
          AcceptInvitation,
          { token: token!, password: v.password, name: v.name?.trim() || null },
          { tenant, accessToken: null },
        )
      ).acceptInvitation;
      if (result.__typename === "SignInPayload") {
        signedIn(tenant!, result.tokens);
        navigate("/", { replace: true });
      } else setError(userErrorText(result as UserErrorData, t));
    } catch (err) {
      setError(errorText(err, t));
    } finally {
      setBusy(false);
    }
  }

  return (
    <AuthCard title={t("invite.title")}>
      <p>{t("invite.help", { tenant })}</p>
      {error && <Alert role="alert" type="error" title={error} style={{ marginBottom: 16 }} />}
      <Form layout="vertical" name="accept-invitation" onFinish={submit}>
        <Form.Item name="name" label={t("invite.name")}>
          <Input autoComplete="name" maxLength={100} />
        </Form.Item>
        <Form.Item
          name="password"
          label={t("signUp.password")}
          rules={[
            { required: true, message: t("form.required", { field: t("signUp.password") }) },
            { min: 8, message: t("form.minLength", { field: t("signUp.password"), min: 8 }) },
          ]}
        >
          <Input.Password autoFocus autoComplete="new-password" />
        </Form.Item>
        <Button type="primary" htmlType="submit" block loading={busy}>
          {t("invite.submit")}
        </Button>
      </Form>
    </AuthCard>
  );
}
