import type { Doc } from "./doc";

/** One GraphQL error code of the gateway's fixed set, or a transport failure. */
export type ErrorCode =
  | "UNAUTHENTICATED"
  | "FORBIDDEN"
  | "NOT_FOUND"
  | "BAD_USER_INPUT"
  | "CONFLICT"
  | "RATE_LIMITED"
  | "INTERNAL"
  | "NETWORK";

export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface Credentials {
  tenant: string | null;
  accessToken: string | null;
}

export type Transport = (body: string, headers: Record<string, string>) => Promise<Response>;

const fetchTransport: Transport = (body, headers) =>
  fetch("/graphql", { method: "POST", body, headers, credentials: "omit" });

/** Runs one console document by its trusted-document id. A mutation's typed errors come back
 * as data (the caller reads `__typename`); request-level errors throw an ApiError. */
export async function execute<R, V>(
  doc: Doc<R, V>,
  variables: V,
  credentials: Credentials,
  transport: Transport = fetchTransport,
): Promise<R> {
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "x-anju-app": "console",
  };
  if (credentials.tenant) headers["x-tenant"] = credentials.tenant;
  if (credentials.accessToken) headers.authorization = `Bearer ${credentials.accessToken}`;
  let response: Response;
  try {
    response = await transport(
      JSON.stringify({ documentId: doc.id, operationName: doc.name, variables }),
      headers,
    );
  } catch (err) {
    throw new ApiError("NETWORK", err instanceof Error ? err.message : String(err));
  }
  let payload: { data?: R | null; errors?: { message: string; extensions?: { code?: string } }[] };
  try {
    payload = await response.json();
  } catch {
    throw new ApiError(response.status >= 500 ? "INTERNAL" : "NETWORK", `HTTP ${response.status}`);
  }
  const first = payload.errors?.[0];
  if (first) {
    const code = (first.extensions?.code ?? (response.status === 404 ? "NOT_FOUND" : "INTERNAL")) as ErrorCode;
    throw new ApiError(code, first.message);
  }
  if (!response.ok || payload.data == null) {
    throw new ApiError("INTERNAL", `HTTP ${response.status}`);
  }
  return payload.data;
}
