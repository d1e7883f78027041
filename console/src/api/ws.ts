import { createClient, type Client } from "graphql-ws";
import type { Doc } from "./doc";

/** The gateway's WebSocket (graphql-transport-ws at /graphql). A browser cannot set X-Tenant
 * on a WebSocket handshake, so the tenant travels as `?tenant=` (the gateway reads it for
 * WebSocket requests only); on a tenant's subdomain it names the same tenant. */
export function liveUrl(tenant: string, base: string = window.location.href): string {
  const url = new URL("/graphql", base);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("tenant", tenant);
  return url.toString();
}

export interface LiveOptions {
  tenant: string;
  /** A valid access token, refreshed first when it ran out (asked again at each reconnect: the
   * gateway closes the socket with 4403 when the token expires). */
  accessToken: () => Promise<string | null>;
  /** Told when the socket is (re)connected or closed, for a status badge. */
  onState?: (state: "connecting" | "connected" | "closed") => void;
  url?: string;
  webSocketImpl?: unknown;
}

/** One graphql-ws client; it reconnects by itself (backing off) and subscribes again. */
export function liveClient(options: LiveOptions): Client {
  return createClient({
    url: options.url ?? liveUrl(options.tenant),
    lazy: true,
    retryAttempts: Number.MAX_SAFE_INTEGER,
    shouldRetry: () => true,
    connectionParams: async () => {
      const token = await options.accessToken();
      return token ? { authorization: `Bearer ${token}` } : {};
    },
    webSocketImpl: options.webSocketImpl,
    on: {
      connecting: () => options.onState?.("connecting"),
      connected: () => options.onState?.("connected"),
      closed: () => options.onState?.("closed"),
    },
  });
}

export interface LiveError {
  message: string;
  extensions?: { code?: string };
}

/** Subscribes to a console subscription document by its trusted id (its text never travels);
 * returns the function that ends it. */
export function subscribe<R, V>(
  client: Client,
  doc: Doc<R, V>,
  variables: V,
  sink: { next: (data: R) => void; error?: (errors: LiveError[] | unknown) => void },
): () => void {
  // graphql-ws checks that the payload has a string `query`: empty, the gateway then runs the
  // trusted document the id names.
  const payload = { query: "", documentId: doc.id, operationName: doc.name, variables } as unknown as {
    query: string;
    variables: Record<string, unknown>;
  };
  return client.subscribe<R>(payload, {
    next: (message) => {
      if (message.errors?.length) sink.error?.(message.errors);
      else if (message.data) sink.next(message.data as R);
    },
    error: (err) => sink.error?.(err),
    complete: () => {},
  });
}
