import http, { type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface ReceivedWebhook {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** How the receiver answers one request: a status, or `hang` (never answers until closed). */
export type Answer = number | "hang" | { redirect: string };

/**
 * A real HTTP endpoint for webhook tests: records every request, answers as `answer(path, n)`
 * says (n counts requests to that path, from 1), and lets a test await the next request.
 */
export async function startWebhookReceiver(answer: (path: string, n: number) => Answer = () => 200) {
  const received: ReceivedWebhook[] = [];
  const counts = new Map<string, number>();
  const waiters: Array<{ match: (r: ReceivedWebhook) => boolean; resolve: (r: ReceivedWebhook) => void }> = [];
  const hanging = new Set<ServerResponse>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const path = req.url ?? "/";
      const entry = { path, headers: req.headers, body: Buffer.concat(chunks).toString() };
      received.push(entry);
      const n = (counts.get(path) ?? 0) + 1;
      counts.set(path, n);
      for (const w of [...waiters]) {
        if (!w.match(entry)) continue;
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(entry);
      }
      const a = answer(path, n);
      if (a === "hang") {
        hanging.add(res);
        return;
      }
      if (typeof a === "object") {
        res.writeHead(302, { location: a.redirect }).end();
        return;
      }
      res.writeHead(a, { "content-type": "text/plain" }).end("ok");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    /** Resolves with the next request matching `match` (or one already received). */
    next(match: (r: ReceivedWebhook) => boolean = () => true): Promise<ReceivedWebhook> {
      const seen = received.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => waiters.push({ match, resolve }));
    },
    /** Cuts the connections of hanging requests (the sender sees an error). */
    dropHanging(): void {
      for (const res of hanging) res.socket?.destroy();
      hanging.clear();
    },
    async close(): Promise<void> {
      for (const res of hanging) res.socket?.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export type WebhookReceiver = Awaited<ReturnType<typeof startWebhookReceiver>>;
