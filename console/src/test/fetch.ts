import { vi } from "vitest";

export interface Sent {
  documentId: string;
  operationName: string;
  variables: Record<string, unknown>;
  headers: Record<string, string>;
}

/** Replaces fetch with a gateway that answers each call from `answer` and records what the
 * console sent. */
export function fakeGateway(answer: (sent: Sent) => { status?: number; body: unknown } | Error) {
  const sent: Sent[] = [];
  const fetchMock = vi.fn(async (_url: string, init: RequestInit) => {
    const body = JSON.parse(String(init.body));
    const call = { ...body, headers: init.headers as Record<string, string> } as Sent;
    sent.push(call);
    const reply = answer(call);
    if (reply instanceof Error) throw reply;
    return new Response(JSON.stringify(reply.body), {
      status: reply.status ?? 200,
      headers: { "content-type": "application/json" },
    });
  });
  vi.stubGlobal("fetch", fetchMock);
  return sent;
}

export const TOKENS = {
  accessToken: "access-1",
  accessTokenExpiresAt: "2999-01-01T00:00:00Z",
  refreshToken: "refresh-1",
  refreshTokenExpiresAt: "2999-01-01T00:00:00Z",
  sessionId: "s-1",
};
