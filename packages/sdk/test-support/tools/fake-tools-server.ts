import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/**
 * A local server speaking the SPEC §6 contract of `POST /v1/tools/credentials` and
 * `POST /v1/audit/events` (plus an empty `GET /v1/credentials`, so `Keyward.connect` works), with
 * knobs for faults. Tests only.
 */

/** A JWT-shaped token with `sub`; the fake matches tokens by their whole text, like a lookup. */
export function fakeUserToken(sub: string, aud = "agent:bot"): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${part({ alg: "ES256", typ: "at+jwt" })}.${part({ sub, aud, jti: Math.random().toString(36) })}.c2lnbmF0dXJl`;
}

export type Fault =
  | { kind: "status"; status: number; body?: string }
  /** 200 with a body that is not the §6 shape. */
  | { kind: "body"; body: string }
  /** Never answers (until the test ends). */
  | { kind: "hang" };

export interface Received {
  path: string;
  authorization: string | undefined;
  body: string;
}

export class FakeToolsServer {
  readonly agentToken = "kwk_fake_agent_for_tools";
  /** user token → that user's credentials. */
  readonly users = new Map<string, Record<string, string>>();
  /** The agent's `user_credentials` grant. */
  granted = new Set<string>();
  readonly received: Received[] = [];
  readonly auditEvents: unknown[] = [];
  /** Applied to the next calls of `/v1/tools/credentials`, in order; then normal answers. */
  toolsFaults: Fault[] = [];
  auditFaults: Fault[] = [];
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  readonly #waiters: { path: string; n: number; resolve: () => void }[] = [];

  get url(): string {
    return `http://127.0.0.1:${(this.#server!.address() as AddressInfo).port}`;
  }

  /** Adds a user; answers the user's token. */
  addUser(id: string, credentials: Record<string, string>): string {
    const token = fakeUserToken(`user:${id}`);
    this.users.set(token, credentials);
    return token;
  }

  /** Bodies received at `path`. */
  bodies(path: string): string[] {
    return this.received.filter((r) => r.path === path).map((r) => r.body);
  }

  /** Resolves once `path` has received `n` requests in all. */
  waitFor(path: string, n: number): Promise<void> {
    return new Promise((resolve) => {
      this.#waiters.push({ path, n, resolve });
      this.#wake();
    });
  }

  async start(): Promise<this> {
    this.#server = createServer((req, res) => void this.#handle(req, res));
    this.#server.on("connection", (s) => {
      this.#sockets.add(s);
      s.once("close", () => this.#sockets.delete(s));
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, "127.0.0.1", resolve));
    return this;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()) ?? resolve());
  }

  #wake(): void {
    for (const w of [...this.#waiters]) {
      if (this.received.filter((r) => r.path === w.path).length >= w.n) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const body = Buffer.concat(chunks).toString("utf8");
    this.received.push({ path, authorization: req.headers.authorization, body });
    this.#wake();
    const json = (status: number, value: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(value));
    };
    const error = (status: number, code: string, message: string) =>
      json(status, { error: { code, message, request_id: "req_fake" } });

    if (req.headers.authorization !== `Bearer ${this.agentToken}`) return error(401, "invalid_key", "bad agent key");
    if (req.method === "GET" && path === "/v1/credentials")
      return json(200, { credentials: {}, removed: [], cursor: "0" });
    const fault =
      path === "/v1/tools/credentials"
        ? this.toolsFaults.shift()
        : path === "/v1/audit/events"
          ? this.auditFaults.shift()
          : undefined;
    if (fault?.kind === "hang") return;
    if (fault?.kind === "status") {
      res.writeHead(fault.status, { "content-type": "application/json" });
      res.end(fault.body ?? "");
      return;
    }
    if (fault?.kind === "body") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(fault.body);
      return;
    }
    if (req.method === "POST" && path === "/v1/tools/credentials") {
      const { user_token, names } = JSON.parse(body) as { user_token: string; names: string[] };
      const creds = this.users.get(user_token);
      if (creds === undefined) return error(401, "invalid_token", "the user token is not valid for this agent");
      const notGranted = names.find((n) => !this.granted.has(n));
      if (notGranted)
        return error(403, "credential_not_granted", `credential "${notGranted}" is not granted to this agent`);
      const missing = names.find((n) => !(n in creds));
      if (missing) return error(404, "credential_not_found", `the user has not set credential "${missing}"`);
      return json(200, { credentials: Object.fromEntries(names.map((n) => [n, creds[n]])) });
    }
    if (req.method === "POST" && path === "/v1/audit/events") {
      this.auditEvents.push(JSON.parse(body));
      return json(201, { ok: true });
    }
    return error(404, "not_found", "no such endpoint");
  }
}
