import { Card, Select, Space, Typography } from "antd";
import type { ReactNode } from "react";
import { useI18n } from "../i18n/I18n";

/** The frame of the signed-out pages: title, language switch, content. */
export function AuthCard({ title, children, extra }: { title: string; children: ReactNode; extra?: ReactNode }) {
  const { t, locale, setLocale } = useI18n();
  return (
    <main style={{ minHeight: "100vh", display: "grid", placeItems: "center", background: "#f3f5f8" }}>
      <Card style={{ width: 420, maxWidth: "94vw" }}>
        <Space style={{ width: "100%", justifyContent: "space-between", marginBottom: 8 }}>
          <Typography.Text type="secondary">{t("app.title")}</Typography.Text>
          <Select
            size="small"
            aria-label={t("app.language")}
            value={locale}
            onChange={setLocale}
            options={[
              { value: "zh-CN", label: "简体中文" },
              { value: "en", label: "English" },
            ]}
          />
        </Space>
        <Typography.Title level={3} style={{ marginTop: 0 }}>
          {title}
        </Typography.Title>
        {children}
        {extra}
      </Card>
    </main>
  );
}
