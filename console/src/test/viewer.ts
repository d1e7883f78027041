/** The `ConsoleViewer` answer for a member with these permissions (the layout reads it to
 * hide the pages the member may not use). */
export function viewer(permissions: string[], roles: string[] = ["custom"]) {
  return {
    me: {
      account: { id: "a-me", name: "Li Wei", phone: null, email: "li@example.com" },
      tenant: { id: "t-1", slug: "acme", name: "Acme Homes", plan: "free", status: "active" },
      roles,
      permissions,
      totpEnabled: false,
      totpEnrollmentRequired: false,
    },
  };
}

export const ADMIN = [
  "member.read",
  "member.invite",
  "role.manage",
  "team.manage",
  "tenant.manage",
  "lead.route",
  "audit.read",
];

/** For the first look at a page: under a loaded shared machine, Ant Design's first render of
 * a table in jsdom can take longer than the usual wait. An upper bound, not a measurement. */
export const FIRST = { timeout: 40_000 };
/** The per-test bound of the longer page tests (many steps, each rendering Ant Design). */
export const LONG = 240_000;
