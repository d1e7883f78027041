import { createContext, useCallback, useContext, useMemo, useState, type ReactNode } from "react";
import { ApiError, execute } from "../api/client";
import type { Doc } from "../api/doc";
import { ConsoleRefresh } from "../gql/documents";

/** Tokens of one tenant's session, kept in localStorage per tenant. */
export interface Tokens {
  accessToken: string;
  accessTokenExpiresAt: string;
  refreshToken: string;
  refreshTokenExpiresAt: string;
  sessionId: string;
}

const TENANT_KEY = "anju.tenant";
const RECENT_KEY = "anju.recentTenants";
const tokensKey = (tenant: string) => `anju.session.${tenant}`;

/** The tenant the subdomain named: the gateway writes it into the page. */
export function tenantFromPage(): string | null {
  const meta = document.querySelector('meta[name="anju-tenant"]');
  return meta?.getAttribute("content") || null;
}

function storedTokens(tenant: string | null): Tokens | null {
  if (!tenant) return null;
  try {
    const raw = localStorage.getItem(tokensKey(tenant));
    const tokens = raw ? (JSON.parse(raw) as Tokens) : null;
    if (tokens && new Date(tokens.refreshTokenExpiresAt).getTime() > Date.now()) return tokens;
  } catch {
    /* a damaged entry is a signed-out one */
  }
  return null;
}

export function recentTenants(): string[] {
  try {
    const list = JSON.parse(localStorage.getItem(RECENT_KEY) ?? "[]");
    return Array.isArray(list) ? list.filter((s) => typeof s === "string").slice(0, 5) : [];
  } catch {
    return [];
  }
}

interface AuthValue {
  tenant: string | null;
  /** The tenant came from the subdomain: it cannot be changed here. */
  tenantFixed: boolean;
  tokens: Tokens | null;
  chooseTenant: (slug: string | null) => void;
  signedIn: (tenant: string, tokens: Tokens) => void;
  forget: () => void;
  /** Runs a document as the signed-in member (refreshing the access token once if it ran out). */
  run: <R, V>(doc: Doc<R, V>, variables: V) => Promise<R>;
}

const AuthContext = createContext<AuthValue | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const fixed = tenantFromPage();
  const [tenant, setTenant] = useState<string | null>(fixed ?? localStorage.getItem(TENANT_KEY));
  const [tokens, setTokens] = useState<Tokens | null>(() => storedTokens(tenant));

  const chooseTenant = useCallback(
    (slug: string | null) => {
      if (fixed) return;
      if (slug) localStorage.setItem(TENANT_KEY, slug);
      else localStorage.removeItem(TENANT_KEY);
      setTenant(slug);
      setTokens(storedTokens(slug));
    },
    [fixed],
  );

  const signedIn = useCallback((slug: string, next: Tokens) => {
    localStorage.setItem(tokensKey(slug), JSON.stringify(next));
    localStorage.setItem(TENANT_KEY, slug);
    localStorage.setItem(RECENT_KEY, JSON.stringify([slug, ...recentTenants().filter((s) => s !== slug)]));
    setTenant(slug);
    setTokens(next);
  }, []);

  const forget = useCallback(() => {
    if (tenant) localStorage.removeItem(tokensKey(tenant));
    setTokens(null);
  }, [tenant]);

  const run = useCallback(
    async <R, V>(doc: Doc<R, V>, variables: V): Promise<R> => {
      try {
        return await execute(doc, variables, { tenant, accessToken: tokens?.accessToken ?? null });
      } catch (err) {
        if (!(err instanceof ApiError) || err.code !== "UNAUTHENTICATED" || !tokens || !tenant) throw err;
        const refreshed = await execute(
          ConsoleRefresh,
          { refreshToken: tokens.refreshToken },
          { tenant, accessToken: null },
        );
        if (refreshed.refreshTokens.__typename !== "SignInPayload") {
          localStorage.removeItem(tokensKey(tenant));
          setTokens(null);
          throw err;
        }
        signedIn(tenant, refreshed.refreshTokens.tokens);
        return execute(doc, variables, { tenant, accessToken: refreshed.refreshTokens.tokens.accessToken });
      }
    },
    [tenant, tokens, signedIn],
  );

  const value = useMemo<AuthValue>(
    () => ({ tenant, tenantFixed: fixed !== null, tokens, chooseTenant, signedIn, forget, run }),
    [tenant, fixed, tokens, chooseTenant, signedIn, forget, run],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthValue {
  const value = useContext(AuthContext);
  if (!value) throw new Error("useAuth outside AuthProvider");
  return value;
}
