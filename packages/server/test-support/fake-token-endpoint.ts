import http from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface TokenRequest {
  form: URLSearchParams;
  headers: http.IncomingHttpHeaders;
}

/** What the endpoint does with the next requests: a JSON answer, raw bytes, a hang or a reset. */
export type TokenBehaviour =
  | { kind: "token"; expiresIn?: number | string | undefined; tokenType?: string }
  | { kind: "status"; status: number; body: string; contentType?: string }
  | { kind: "hang" }
  | { kind: "reset" };

/**
 * A real OAuth 2.0 token endpoint (RFC 6749 §4.4) on node:http: checks the client credentials it
 * was given and issues `tok-1`, `tok-2`, …; a test switches it to garbage, errors, a hang or a
 * reset, and can hold answers until it releases them (to see single flight).
 */
export async function startFakeTokenEndpoint(opts: { clientId: string; clientSecret: string }) {
  const requests: TokenRequest[] = [];
  let behaviour: TokenBehaviour = { kind: "token", expiresIn: 3600 };
  let issued = 0;
  let gate: Promise<void> | undefined;
  let arrived: Array<() => void> = [];
  const sockets = new Set<Socket>();

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const form = new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
      requests.push({ form, headers: req.headers });
      for (const w of arrived.splice(0)) w();
      if (gate) await gate;
      const b = behaviour;
      if (b.kind === "hang") return;
      if (b.kind === "reset") {
        req.socket.destroy();
        return;
      }
      if (b.kind === "status") {
        res.writeHead(b.status, { "content-type": b.contentType ?? "application/json" }).end(b.body);
        return;
      }
      if (
        form.get("grant_type") !== "client_credentials" ||
        form.get("client_id") !== opts.clientId ||
        form.get("client_secret") !== opts.clientSecret
      ) {
        res.writeHead(401, { "content-type": "application/json" }).end('{"error":"invalid_client"}');
        return;
      }
      issued++;
      const body: Record<string, unknown> = { access_token: `tok-${issued}`, token_type: b.tokenType ?? "Bearer" };
      if (b.expiresIn !== undefined) body.expires_in = b.expiresIn;
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
    });
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}/oauth2/token`,
    requests,
    get issued() {
      return issued;
    },
    behave(b: TokenBehaviour): void {
      behaviour = b;
    },
    /** Holds every answer until the returned function is called. */
    hold(): () => void {
      let release!: () => void;
      gate = new Promise<void>((r) => {
        release = r;
      });
      return () => {
        gate = undefined;
        release();
      };
    },
    /** Resolves once `n` requests in total have arrived. */
    async arrivedCount(n: number): Promise<void> {
      while (requests.length < n) await new Promise<void>((r) => arrived.push(r));
    },
    close: () =>
      new Promise<void>((resolve) => {
        arrived = [];
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export type FakeTokenEndpoint = Awaited<ReturnType<typeof startFakeTokenEndpoint>>;
