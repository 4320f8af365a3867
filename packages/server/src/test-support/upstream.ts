import http, { type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * A real HTTP upstream for gateway tests: `/echo…` answers with what it saw; `/sse` streams events
 * one by one, each released by the test (`sse.next()`), so "arrives chunk by chunk" is observable
 * without timing; `/hang` never answers.
 */
export async function startUpstream() {
  const seen: SeenRequest[] = [];
  let releaseNext: (() => void) | undefined;
  const waiting: Array<() => void> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const entry = {
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      };
      seen.push(entry);
      if (req.url?.includes("/sse")) {
        res.writeHead(200, {
          "content-type": "text/event-stream",
          "cache-control": "no-cache",
          connection: "x-upstream-only",
          "x-upstream-only": "1",
        });
        res.flushHeaders();
        for (let i = 1; i <= 3; i++) {
          await new Promise<void>((resolve) => {
            releaseNext = resolve;
            for (const w of waiting.splice(0)) w();
          });
          res.write(`data: event ${i}\n\n`);
        }
        res.end();
        return;
      }
      if (req.url?.includes("/hang")) return;
      res.writeHead(200, { "content-type": "application/json", "x-upstream": "yes" });
      res.end(JSON.stringify(entry));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    sse: {
      /** Lets the upstream write its next event (waits until it is ready to). */
      async next(): Promise<void> {
        while (!releaseNext) await new Promise<void>((r) => waiting.push(r));
        const r = releaseNext;
        releaseNext = undefined;
        r();
      },
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
