import { BrowserRouter, MemoryRouter, Navigate, Route, Routes } from "react-router-dom";
import { AuthProvider } from "./auth/Auth";
import { ConsoleLayout } from "./components/ConsoleLayout";
import { Guarded } from "./components/Permissions";
import { I18nProvider, type Locale } from "./i18n/I18n";
import { HomePage } from "./pages/Home/Home";
import { ProjectDetailPage } from "./pages/Projects/ProjectDetail";
import { ProjectsPage } from "./pages/Projects/Projects";
import { SalesTablePage } from "./pages/SalesTable/SalesTable";
import { UnitDetailPage } from "./pages/Units/UnitDetail";
import { UnitsPage } from "./pages/Units/Units";
import { AcceptInvitationPage } from "./pages/Invite/AcceptInvitationPage";
import { RolesPage } from "./pages/Roles/Roles";
import { SessionsPage } from "./pages/Sessions/Sessions";
import { SignInPage } from "./pages/SignIn/SignIn";
import { SignUpPage } from "./pages/SignUp/SignUp";
import { StaffPage } from "./pages/Staff/Staff";
import { TenantPicker } from "./pages/Tenant/TenantPicker";
import { AuditPage } from "./pages/Audit/Audit";
import { RoutingPage } from "./pages/Routing/Routing";
import { SettingsPage } from "./pages/Settings/Settings";
import { TeamsPage } from "./pages/Teams/Teams";

export function ConsoleRoutes() {
  return (
    <Routes>
      <Route path="/tenant" element={<TenantPicker />} />
      <Route path="/sign-in" element={<SignInPage />} />
      <Route path="/sign-up" element={<SignUpPage />} />
      <Route path="/invite" element={<AcceptInvitationPage />} />
      <Route element={<ConsoleLayout />}>
        <Route index element={<HomePage />} />
        <Route path="/staff" element={<Guarded path="/staff"><StaffPage /></Guarded>} />
        <Route path="/roles" element={<Guarded path="/roles"><RolesPage /></Guarded>} />
        <Route path="/sessions" element={<SessionsPage />} />
        <Route path="/teams" element={<Guarded path="/teams"><TeamsPage /></Guarded>} />
        <Route path="/settings" element={<Guarded path="/settings"><SettingsPage /></Guarded>} />
        <Route path="/routing" element={<Guarded path="/routing"><RoutingPage /></Guarded>} />
        <Route path="/audit" element={<Guarded path="/audit"><AuditPage /></Guarded>} />
        <Route path="/projects" element={<Guarded path="/projects"><ProjectsPage /></Guarded>} />
        <Route path="/projects/:id" element={<Guarded path="/projects"><ProjectDetailPage /></Guarded>} />
        <Route path="/units" element={<Guarded path="/units"><UnitsPage /></Guarded>} />
        <Route path="/units/:id" element={<Guarded path="/units"><UnitDetailPage /></Guarded>} />
        <Route path="/buildings/:id/sales-table" element={<Guarded path="/units"><SalesTablePage /></Guarded>} />
      </Route>
      <Route path="*" element={<Navigate to="/" replace />} />
    </Routes>
  );
}

/** The console as served at /console/ (or, in tests, at `initialPath` in memory). */
export function App({ initialPath, locale }: { initialPath?: string; locale?: Locale }) {
  const routes = (
    <AuthProvider>
      <ConsoleRoutes />
    </AuthProvider>
  );
  return (
    <I18nProvider locale={locale}>
      {initialPath ? (
        <MemoryRouter initialEntries={[initialPath]}>{routes}</MemoryRouter>
      ) : (
        <BrowserRouter basename="/console">{routes}</BrowserRouter>
      )}
    </I18nProvider>
  );
}
