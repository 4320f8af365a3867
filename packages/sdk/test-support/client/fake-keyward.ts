import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/**
 * A small server speaking the SPEC §6 shapes of `GET /v1/credentials` (strong ETag, 304,
 * `?since=` deltas with `removed` and `cursor`) and `GET /v1/credentials/events` (SSE with `id:`
 * lines, `changed`/`removed` events, comment heartbeats, replay after `Last-Event-ID`), with knobs
 * for the faults the client must survive. Tests only.
 */
export interface FakeCredential {
  value: string;
  version: number;
  expires_at?: string;
}

interface Change {
  seq: number;
  name: string;
  kind: "changed" | "removed";
  version?: number;
}

export interface RequestRecord {
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage["headers"];
  status: number;
}

export class FakeKeyward {
  readonly token: string;
  readonly credentials = new Map<string, FakeCredential>();
  readonly requests: RequestRecord[] = [];
  /** Status for `/v1/credentials/events` when not 200 (e.g. 404: no event stream). */
  eventsStatus = 200;
  /** Status forced on `/v1/credentials` (e.g. 503), when set. */
  credentialsStatus: number | undefined;
  /** Send heartbeats on open streams (false: a silent stream). */
  heartbeats = true;
  heartbeatMs: number;
  /** Sent as the body's `unavailable` (the real server names credentials it cannot serve there). */
  unavailable: Record<string, { code: string; message: string }> | undefined;
  #seq = 0;
  #log: Change[] = [];
  #server: Server | undefined;
  #port = 0;
  readonly #sockets = new Set<Socket>();
  readonly #streams = new Set<ServerResponse>();
  readonly #timers = new Set<ReturnType<typeof setInterval>>();
  readonly #streamWaiters: (() => void)[] = [];
  readonly #requestWaiters: { match: (r: RequestRecord) => boolean; resolve: (r: RequestRecord) => void }[] = [];

  constructor(opts: { token?: string; heartbeatMs?: number } = {}) {
    this.token = opts.token ?? "kwk_fakeagentkey";
    this.heartbeatMs = opts.heartbeatMs ?? 50;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  get cursor(): number {
    return this.#seq;
  }

  /** Open event streams. */
  get streams(): number {
    return this.#streams.size;
  }

  requestsTo(path: string): RequestRecord[] {
    return this.requests.filter((r) => r.path === path);
  }

  /** Sets a value: a new version, a `changed` event to every stream. */
  set(name: string, value: string, extra: { expires_at?: string } = {}): number {
    const version = (this.credentials.get(name)?.version ?? 0) + 1;
    this.credentials.set(name, { value, version, ...extra });
    this.#record({ seq: ++this.#seq, name, kind: "changed", version });
    return version;
  }

  remove(name: string): void {
    this.credentials.delete(name);
    this.#record({ seq: ++this.#seq, name, kind: "removed" });
  }

  async start(port = this.#port): Promise<this> {
    const server = createServer((req, res) => this.#handle(req, res));
    server.on("connection", (s) => {
      this.#sockets.add(s);
      s.once("close", () => this.#sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
    this.#server = server;
    this.#port = (server.address() as AddressInfo).port;
    return this;
  }

  /** Kills the server as a crash would: every connection reset, the port closed. */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const t of this.#timers) clearInterval(t);
    this.#timers.clear();
    this.#streams.clear();
    for (const wake of this.#streamWaiters.splice(0)) wake();
    for (const s of this.#sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Cuts every open event stream (the server stays up). */
  dropStreams(): void {
    for (const res of this.#streams) res.socket?.destroy();
    this.#streams.clear();
  }

  /** Resolves when at least `n` streams are open. */
  async waitForStreams(n = 1): Promise<void> {
    while (this.#streams.size < n) await new Promise<void>((resolve) => this.#streamWaiters.push(resolve));
  }

  /** Resolves when no stream is open any more. */
  async waitForNoStreams(): Promise<void> {
    while (this.#streams.size > 0) await new Promise<void>((resolve) => this.#streamWaiters.push(resolve));
  }

  /** Resolves with the next answered request to `path` that `match` accepts. */
  nextRequest(path: string, match: (r: RequestRecord) => boolean = () => true): Promise<RequestRecord> {
    return new Promise((resolve) => this.#requestWaiters.push({ match: (r) => r.path === path && match(r), resolve }));
  }

  #answered(record: RequestRecord): RequestRecord {
    for (const w of [...this.#requestWaiters]) {
      if (!w.match(record)) continue;
      this.#requestWaiters.splice(this.#requestWaiters.indexOf(w), 1);
      w.resolve(record);
    }
    return record;
  }

  #record(change: Change): void {
    this.#log.push(change);
    for (const res of this.#streams) this.#send(res, change);
  }

  #send(res: ServerResponse, c: Change): void {
    const data = c.kind === "changed" ? { name: c.name, version: c.version } : { name: c.name };
    res.write(`id: ${c.seq}\nevent: ${c.kind}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    this.#route(req, res);
  }

  /** Returns what it answered with, so each branch can end in one `return`. */
  #route(req: IncomingMessage, res: ServerResponse): RequestRecord {
    const url = new URL(req.url ?? "/", "http://x");
    const record: RequestRecord = { path: url.pathname, query: url.searchParams, headers: req.headers, status: 0 };
    this.requests.push(record);
    const reply = (status: number, body?: unknown, headers: Record<string, string> = {}) => {
      record.status = status;
      res.writeHead(status, body === undefined ? headers : { "content-type": "application/json", ...headers });
      res.end(body === undefined ? undefined : JSON.stringify(body));
      return this.#answered(record);
    };
    const error = (status: number, code: string) =>
      reply(status, { error: { code, message: `fake: ${code}`, request_id: "req_fake" } });

    if (req.headers.authorization !== `Bearer ${this.token}`) return error(401, "invalid_key");
    if (url.pathname === "/v1/credentials") {
      if (this.credentialsStatus !== undefined) return error(this.credentialsStatus, "store_unavailable");
      const body = this.#page(url.searchParams.get("since"));
      if (body === undefined) return error(400, "invalid_request");
      const text = JSON.stringify(body);
      const etag = `"${createHash("sha256").update(text).digest("base64url")}"`;
      if (req.headers["if-none-match"] === etag) return reply(304, undefined, { etag });
      record.status = 200;
      res.writeHead(200, { "content-type": "application/json", etag });
      res.end(text);
      return this.#answered(record);
    }
    if (url.pathname === "/v1/credentials/events") {
      if (this.eventsStatus !== 200) return error(this.eventsStatus, "not_found");
      record.status = 200;
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      res.flushHeaders();
      const last = Number(req.headers["last-event-id"] ?? Number.NaN);
      if (Number.isInteger(last)) for (const c of this.#log) if (c.seq > last) this.#send(res, c);
      this.#streams.add(res);
      const timer = setInterval(() => {
        if (this.heartbeats) res.write(": heartbeat\n\n");
      }, this.heartbeatMs);
      this.#timers.add(timer);
      res.once("close", () => {
        clearInterval(timer);
        this.#timers.delete(timer);
        this.#streams.delete(res);
        for (const wake of this.#streamWaiters.splice(0)) wake();
      });
      for (const wake of this.#streamWaiters.splice(0)) wake();
      return this.#answered(record);
    }
    return error(404, "not_found");
  }

  #page(since: string | null): Record<string, unknown> | undefined {
    const extra = this.unavailable === undefined ? {} : { unavailable: this.unavailable };
    if (since === null) {
      return { credentials: Object.fromEntries(this.credentials), removed: [], cursor: String(this.#seq), ...extra };
    }
    const from = Number(since);
    if (!Number.isInteger(from) || from < 0 || from > this.#seq) return undefined;
    const credentials: Record<string, FakeCredential> = {};
    const removed = new Set<string>();
    for (const c of this.#log) {
      if (c.seq <= from) continue;
      const current = this.credentials.get(c.name);
      if (current === undefined) {
        removed.add(c.name);
      } else {
        credentials[c.name] = current;
        removed.delete(c.name);
      }
    }
    return { credentials, removed: [...removed], cursor: String(this.#seq), ...extra };
  }
}
