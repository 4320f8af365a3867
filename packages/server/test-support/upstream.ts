import http, { type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { createStepGate } from "./step-gate.js";

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
  const gate = createStepGate();
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
          await gate.step();
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
    /** `sse.next()` lets the upstream write its next event (waits until it is ready to). */
    sse: { next: gate.next },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
