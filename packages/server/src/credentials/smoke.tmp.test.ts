import { expect, it } from "vitest";
import { startTestServer } from "../test-support/server.js";

it("smoke", async () => {
  const kw = await startTestServer({}, { credentials: { heartbeatMs: 200 } });
  try {
    console.log(await kw.admin("PUT", "/credentials/openai", { value: "sk-1", egress: { base_url: "https://api.openai.com/v1" } }));
    console.log(await kw.admin("PUT", "/credentials/openai", { value: "sk-2" }));
    console.log(JSON.stringify(await kw.admin("GET", "/credentials/openai")));
    console.log(await kw.admin("POST", "/agents", { name: "bot", upstream: "http://127.0.0.1:9" }));
    console.log(JSON.stringify(await kw.admin("PUT", "/agents/bot/grants", { credentials: [{ name: "openai", mode: "read" }] })));
    const key = await kw.admin("POST", "/keys", { owner: "agent:bot", scopes: [] });
    const res = await fetch(`${kw.url}/v1/credentials`, { headers: { authorization: `Bearer ${key.body.secret}` } });
    console.log(res.status, res.headers.get("etag"), await res.text());
    const ev = await fetch(`${kw.url}/v1/credentials/events`, { headers: { authorization: `Bearer ${key.body.secret}` } });
    const reader = ev.body!.getReader();
    const dec = new TextDecoder();
    console.log(dec.decode((await reader.read()).value));
    await kw.admin("PUT", "/credentials/openai", { value: "sk-3" });
    console.log(dec.decode((await reader.read()).value));
    console.log(dec.decode((await reader.read()).value));
    await reader.cancel();
    const audit = await kw.admin("GET", "/audit?limit=20");
    console.log(JSON.stringify(audit.body.events.map((e: any) => [e.action, e.details])));
    expect(1).toBe(1);
  } finally {
    await kw.close();
  }
});
