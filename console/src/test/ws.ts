import { vi } from "vitest";

interface Subscribed {
  id: string;
  payload: { query: string; documentId: string; operationName: string; variables: Record<string, unknown> };
}

/** A gateway's graphql-transport-ws end in memory: it acknowledges connection_init, records
 * subscriptions, and lets a test push `next` messages to them. Installed as the global
 * WebSocket (graphql-ws takes it from there). */
export class FakeSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;
  static sockets: FakeSocket[] = [];

  readyState = FakeSocket.CONNECTING;
  onopen: (() => void) | null = null;
  onmessage: ((e: { data: string }) => void) | null = null;
  onclose: ((e: { code: number; reason: string; wasClean: boolean }) => void) | null = null;
  onerror: ((e: unknown) => void) | null = null;
  init: Record<string, unknown> | undefined;
  subscriptions: Subscribed[] = [];
  completed: string[] = [];

  constructor(
    readonly url: string,
    readonly protocol: string,
  ) {
    FakeSocket.sockets.push(this);
    setTimeout(() => {
      this.readyState = FakeSocket.OPEN;
      this.onopen?.();
    }, 0);
  }

  send(data: string) {
    const msg = JSON.parse(data);
    if (msg.type === "connection_init") {
      this.init = msg.payload;
      setTimeout(() => this.onmessage?.({ data: JSON.stringify({ type: "connection_ack" }) }), 0);
    } else if (msg.type === "subscribe") this.subscriptions.push({ id: msg.id, payload: msg.payload });
    else if (msg.type === "complete") this.completed.push(msg.id);
  }

  close(code = 1000, reason = "") {
    if (this.readyState === FakeSocket.CLOSED) return;
    this.readyState = FakeSocket.CLOSED;
    setTimeout(() => this.onclose?.({ code, reason, wasClean: true }), 0);
  }

  /** Sends `data` as the next result of subscription `id` (the latest one by default). */
  next(data: unknown, id?: string) {
    const sid = id ?? this.subscriptions[this.subscriptions.length - 1]?.id;
    this.onmessage?.({ data: JSON.stringify({ id: sid, type: "next", payload: { data } }) });
  }

  static install() {
    FakeSocket.sockets = [];
    vi.stubGlobal("WebSocket", FakeSocket);
  }

  static last(): FakeSocket {
    const socket = FakeSocket.sockets[FakeSocket.sockets.length - 1];
    if (!socket) throw new Error("no socket opened");
    return socket;
  }
}
