import { expect, it } from "vitest";
import { startTestServer } from "../test-support/server.js";

it("smoke2", async () => {
  const t0 = Date.now();
  const lap = (m: string) => console.log(m, Date.now() - t0);
  const kw = await startTestServer({}, { credentials: { heartbeatMs: 200 } });
  await kw.admin("POST", "/agents", { name: "bot", upstream: "http://127.0.0.1:9" });
  const key = await kw.admin("POST", "/keys", { owner: "agent:bot", scopes: [] });
  lap("started");
  const ev = await fetch(`${kw.url}/v1/credentials/events`, { headers: { authorization: `Bearer ${key.body.secret}` } });
  const reader = ev.body!.getReader();
  await reader.read();
  lap("sse");
  await reader.cancel();
  lap("cancelled");
  await kw.admin("GET", "/audit?limit=20");
  lap("audit");
  await kw.close();
  lap("closed");
  expect(1).toBe(1);
});
