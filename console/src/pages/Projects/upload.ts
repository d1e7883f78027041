import { ApiError, type Credentials } from "../../api/client";
import type { Doc } from "../../api/doc";

/** Runs a mutation that takes one file, as a GraphQL multipart request (operations, map, the
 * file), by its trusted-document id like every console request. X-Tenant is always sent, so
 * the gateway's CSRF guard for multipart posts is met. */
export async function executeUpload<R, V extends Record<string, unknown>>(
  doc: Doc<R, V>,
  variables: V,
  fileVariable: keyof V & string,
  file: File,
  credentials: Credentials,
): Promise<R> {
  const operations = { documentId: doc.id, operationName: doc.name, variables: { ...variables, [fileVariable]: null } };
  const body = new FormData();
  body.append("operations", JSON.stringify(operations));
  body.append("map", JSON.stringify({ 0: [`variables.${fileVariable}`] }));
  body.append("0", file, file.name);
  const headers: Record<string, string> = { "x-anju-app": "console" };
  if (credentials.tenant) headers["x-tenant"] = credentials.tenant;
  if (credentials.accessToken) headers.authorization = `Bearer ${credentials.accessToken}`;
  let response: Response;
  try {
    response = await fetch("/graphql", { method: "POST", body, headers, credentials: "omit" });
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
  if (first) throw new ApiError((first.extensions?.code ?? "INTERNAL") as ApiError["code"], first.message);
  if (!response.ok || payload.data == null) throw new ApiError("INTERNAL", `HTTP ${response.status}`);
  return payload.data;
}
