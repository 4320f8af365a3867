import http, { type IncomingHttpHeaders } from "node:http";
import { type AddressInfo, connect } from "node:net";
import { gzipSync } from "node:zlib";
import { createStepGate } from "../step-gate.js";

export interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** The secret as the upstream received it: the injected header's value, without a scheme. */
function secretFrom(headers: IncomingHttpHeaders): string {
  const auth = headers.authorization ?? headers["x-upstream-key"] ?? "";
  return String(auth).replace(/^(Bearer|Token) /, "");
}

/** Every form a careless upstream could send the secret back in. */
export function leakForms(secret: string): Record<string, string> {
  const raw = Buffer.from(secret);
  return {
    raw: secret,
    base64: raw.toString("base64"),
    base64url: raw.toString("base64url"),
    hex: raw.toString("hex"),
    HEX: raw.toString("hex").toUpperCase(),
    url: encodeURIComponent(secret),
    basic: Buffer.from(`user:${secret}`).toString("base64"),
    json: JSON.stringify(secret).slice(1, -1),
  };
}

/** 4 MiB of filler with the secret across each 64 KiB boundary (`/big`). */
export function bigBody(secret: string): Buffer {
  const whole = Buffer.alloc(64 * 65536, "abcdefghij");
  const half = Math.floor(secret.length / 2);
  for (let at = 65536; at < whole.length; at += 65536) whole.write(secret, at - half, "latin1");
  return whole;
}

/**
 * A real upstream for egress tests. Under any path:
 * - `…/leak`: sends the secret it received back in every form, in response headers and in a body
 *   written a few bytes at a time (so forms straddle chunks);
 * - `…/gzip-leak`: the same body gzipped, whatever the request asked for;
 * - `…/compress`: a body with an encoding Keyward cannot decode;
 * - `…/redirect?to=URL`: 302 to URL;
 * - `…/sse`: three events, each released by the test (`sse.next()`);
 * - `…/big`: 4 MiB with the secret straddling every 64 KiB write (see bigBody);
 * - `…/empty`: 204, the secret in a header;
 * - `…/hang`: never answers;
 * - anything else: 200 with what it saw as JSON (headers included, so the injected header too).
 */
export async function startEgressUpstream() {
  const seen: Seen[] = [];
  const gate = createStepGate();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const entry: Seen = {
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      };
      seen.push(entry);
      const path = (req.url ?? "").split("?")[0] ?? "";
      const secret = secretFrom(req.headers);
      const forms = leakForms(secret);
      const leakBody = `${Object.entries(forms)
        .map(([k, v]) => `${k}=${v}`)
        .join("\n")}\n`;
      if (path.endsWith("/leak")) {
        res.writeHead(200, {
          "content-type": "text/plain",
          "x-leak-raw": secret,
          "x-leak-b64": forms.base64,
          [`x-leak-${forms.hex}`]: "named by the secret",
          "set-cookie": [`s=${forms.url}`, "plain=1"],
          "x-safe": "kept",
        });
        for (let at = 0; at < leakBody.length; at += 5) {
          res.write(leakBody.slice(at, at + 5));
          await new Promise((r) => setImmediate(r));
        }
        res.end();
        return;
      }
      if (path.endsWith("/gzip-leak")) {
        res.writeHead(200, { "content-type": "text/plain", "content-encoding": "gzip" });
        res.end(gzipSync(leakBody));
        return;
      }
      if (path.endsWith("/compress")) {
        res.writeHead(200, { "content-type": "text/plain", "content-encoding": "compress" });
        res.end(`${secret} in a form Keyward cannot read`);
        return;
      }
      if (path.endsWith("/redirect")) {
        const to = new URL(req.url ?? "/", "http://x").searchParams.get("to") ?? "/";
        res.writeHead(302, { location: to, "content-type": "text/plain" });
        res.end(`redirecting to ${to}`);
        return;
      }
      if (path.endsWith("/sse")) {
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
        res.flushHeaders();
        for (let i = 1; i <= 3; i++) {
          await gate.step();
          res.write(`data: event ${i} ${i === 2 ? secret : ""}\n\n`);
        }
        res.end();
        return;
      }
      if (path.endsWith("/big")) {
        // 64 chunks of 64 KiB, the secret straddling every boundary between them.
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": 64 * 65536 });
        const whole = bigBody(secret);
        for (let at = 0; at < whole.length; at += 65536) {
          if (!res.write(whole.subarray(at, at + 65536))) await new Promise((r) => res.once("drain", r));
        }
        res.end();
        return;
      }
      if (path.endsWith("/empty")) {
        res.writeHead(204, { "x-empty": secret });
        res.end();
        return;
      }
      if (path.endsWith("/hang")) return;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(entry));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    seen,
    /** `sse.next()` lets the upstream write its next event (waits until it is ready to). */
    sse: { next: gate.next },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A host no egress request may ever reach: it only counts what arrives. */
export async function startTrap() {
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    res.end("trap");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * One request over a raw socket: exactly the bytes given (end the head with `connection: close`),
 * exactly the bytes answered.
 */
export function rawRequest(url: string, head: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(head));
    const chunks: Buffer[] = [];
    socket.on("data", (c) => chunks.push(c));
    socket.on("end", () => resolve(Buffer.concat(chunks).toString("latin1")));
    socket.on("error", reject);
  });
}
