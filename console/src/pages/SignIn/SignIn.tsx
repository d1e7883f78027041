import { Alert, Button, Form, Input, Space, Tabs, Typography } from "antd";
import { useEffect, useState } from "react";
import { Link, Navigate, useNavigate } from "react-router-dom";
import { execute } from "../../api/client";
import { useAuth, type Tokens } from "../../auth/Auth";
import { AuthCard } from "../../components/AuthCard";
import { errorText, userErrorText, type UserErrorData } from "../../components/errors";
import { useI18n } from "../../i18n/I18n";
import { CompleteTotpSignIn, SendSignInCode, SignIn, SignInWithCode } from "../../gql/documents";

type Outcome =
  | { __typename: "SignInPayload"; tokens: Tokens }
  | { __typename: "TotpChallenge"; challengeToken: string; expiresAt: string }
  | UserErrorData;

/** Sign-in to the chosen tenant: password or SMS code, then the TOTP step when asked. */
export function SignInPage() {
  const { t } = useI18n();
  const { tenant, tenantFixed, signedIn, chooseTenant } = useAuth();
  const navigate = useNavigate();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [challenge, setChallenge] = useState<string | null>(null);
  const [resendIn, setResendIn] = useState(0);
  const [smsForm] = Form.useForm<{ phone: string; code: string }>();

  useEffect(() => {
    if (resendIn <= 0) return;
    const timer = setTimeout(() => setResendIn((s) => s - 1), 1000);
    return () => clearTimeout(timer);
  }, [resendIn]);

  if (!tenant) return <Navigate to="/tenant" replace />;
  const credentials = { tenant, accessToken: null };

  async function attempt(call: () => Promise<Outcome>) {
    setBusy(true);
    setError(null);
    try {
      const outcome = await call();
      if (outcome.__typename === "SignInPayload" && "tokens" in outcome) {
        signedIn(tenant!, outcome.tokens);
        navigate("/", { replace: true });
      } else if (outcome.__typename === "TotpChallenge" && "challengeToken" in outcome) {
        setChallenge(outcome.challengeToken);
      } else {
        setError(userErrorText(outcome as UserErrorData, t));
      }
    } catch (err) {
      setError(errorText(err, t));
    } finally {
      setBusy(false);
    }
  }

  const required = (field: string) => ({ required: true, message: t("form.required", { field }) });

  if (challenge) {
    return (
      <AuthCard title={t("signIn.totpTitle")}>
        <Typography.Paragraph>{t("signIn.totpHelp")}</Typography.Paragraph>
        {error && <Alert role="alert" type="error" title={error} style={{ marginBottom: 16 }} />}
        <Form
          layout="vertical"
          onFinish={(v: { code: string }) =>
            attempt(async () =>
              (await execute(CompleteTotpSignIn, { challengeToken: challenge, code: v.code.trim() }, credentials))
                .completeTotpSignIn as Outcome,
            )
          }
        >
          <Form.Item
            name="code"
            label={t("signIn.totpCode")}
            rules={[required(t("signIn.totpCode")), { pattern: /^\d{6}$/, message: t("signIn.totpHelp") }]}
          >
            <Input autoFocus inputMode="numeric" autoComplete="one-time-code" maxLength={6} />
          </Form.Item>
          <Button type="primary" htmlType="submit" block loading={busy}>
            {t("signIn.verify")}
          </Button>
        </Form>
      </AuthCard>
    );
  }

  async function sendCode() {
    const { phone } = await smsForm.validateFields(["phone"]);
    setError(null);
    try {
      const sent = (await execute(SendSignInCode, { phone: phone.trim() }, credentials)).requestSmsCode;
      if (sent.__typename === "SmsCodeSent") setResendIn(sent.resendAfterSeconds);
      else setError(userErrorText(sent as UserErrorData, t));
    } catch (err) {
      setError(errorText(err, t));
    }
  }

  const passwordForm = (
    <Form
      layout="vertical"
      name="password-sign-in"
      onFinish={(v: { identifier: string; password: string }) =>
        attempt(async () =>
          (await execute(SignIn, { identifier: v.identifier.trim(), password: v.password }, credentials))
            .signIn as Outcome,
        )
      }
    >
      <Form.Item name="identifier" label={t("signIn.identifier")} rules={[required(t("signIn.identifier"))]}>
        <Input autoFocus autoComplete="username" />
      </Form.Item>
      <Form.Item name="password" label={t("signIn.passwordLabel")} rules={[required(t("signIn.passwordLabel"))]}>
        <Input.Password autoComplete="current-password" />
      </Form.Item>
      <Button type="primary" htmlType="submit" block loading={busy}>
        {t("signIn.submit")}
      </Button>
    </Form>
  );

  const smsSignIn = (
    <Form
      form={smsForm}
      layout="vertical"
      name="sms-sign-in"
      onFinish={(v: { phone: string; code: string }) =>
        attempt(async () =>
          (await execute(SignInWithCode, { phone: v.phone.trim(), code: v.code.trim() }, credentials))
            .signInWithSmsCode as Outcome,
        )
      }
    >
      <Form.Item name="phone" label={t("signIn.phone")} rules={[required(t("signIn.phone"))]}>
        <Input autoComplete="tel" inputMode="tel" />
      </Form.Item>
      <Form.Item label={t("signIn.code")} required>
        <Space.Compact style={{ width: "100%" }}>
          <Form.Item name="code" noStyle rules={[required(t("signIn.code"))]}>
            <Input aria-label={t("signIn.code")} inputMode="numeric" autoComplete="one-time-code" />
          </Form.Item>
          <Button onClick={sendCode} disabled={resendIn > 0}>
            {resendIn > 0 ? t("signIn.resendIn", { seconds: resendIn }) : t("signIn.sendCode")}
          </Button>
        </Space.Compact>
      </Form.Item>
      <Button type="primary" htmlType="submit" block loading={busy}>
        {t("signIn.submit")}
      </Button>
    </Form>
  );

  return (
    <AuthCard title={t("signIn.title")}>
      <Typography.Paragraph>
        {t("home.tenant")}: <Typography.Text strong>{tenant}</Typography.Text>{" "}
        {!tenantFixed && (
          <Link to="/tenant" onClick={() => chooseTenant(null)}>
            {t("tenant.change")}
          </Link>
        )}
      </Typography.Paragraph>
      {error && <Alert role="alert" type="error" title={error} style={{ marginBottom: 16 }} />}
      <Tabs
        items={[
          { key: "password", label: t("signIn.password"), children: passwordForm },
          { key: "sms", label: t("signIn.sms"), children: smsSignIn },
        ]}
      />
      <Typography.Paragraph style={{ marginBottom: 0 }}>
        {t("tenant.noAccount")} <Link to="/sign-up">{t("tenant.signUp")}</Link>
      </Typography.Paragraph>
    </AuthCard>
  );
}
