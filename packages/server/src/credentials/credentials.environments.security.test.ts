import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeOpenAI, startFakeOpenAI } from "../../test-support/fake-openai.js";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import { openSse } from "../../test-support/sse-client.js";

/**
 * Names of other environments (issue 4, bad input): an agent granted `staging.openai_key` gets
 * nothing of `prod.openai_key` — not its value, not its changes, not its removal, not its use
 * through egress — whether it authenticates with its key or an access token. Names it was not
 * granted and names that do not exist get the same answer, so it cannot probe which exist.
 * A prod agent reading prod through the same paths shows each check can fail.
 */

const STAGING = "sk-staging-Ux4Rb8Nq2Wd6";
const PROD = "sk-prod-Hc7Mv3Tz9Pk1";
const STAGING_NAME = "staging.openai_key";
const PROD_NAME = "prod.openai_key";

let kw: TestServer;
let upstream: FakeOpenAI;
const auth: Record<string, string> = {};
let prodKey: string;
let counter = 0;

async function admin(method: string, path: string, body?: unknown) {
  const res = await kw.admin(method, path, body);
  if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

async function agentKey(name: string): Promise<string> {
  await admin("POST", "/agents", { name, upstream: "http://127.0.0.1:9" });
  return (await admin("POST", "/keys", { owner: `agent:${name}`, scopes: [] })).secret;
}

/** A new value of `name` (…-1, …-2, …): every write is a distinct version. */
function putProd(value = `${PROD}-${++counter}`) {
  return admin("PUT", `/credentials/${PROD_NAME}`, { value, egress: { base_url: upstream.url } });
}

// biome-ignore lint/suspicious/noExplicitAny: each test asserts the shape it needs
const json = (res: Response): Promise<any> => res.json();

const read = (token: string, query = "") =>
  fetch(`${kw.url}/v1/credentials${query}`, { headers: { authorization: `Bearer ${token}` } });

const egress = (token: string, name: string) =>
  fetch(`${kw.url}/egress/${name}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }),
  });

beforeAll(async () => {
  [kw, upstream] = await Promise.all([startTestServer({}, { credentials: { heartbeatMs: 100 } }), startFakeOpenAI()]);
  auth.key = await agentKey("staging-bot");
  prodKey = await agentKey("prod-bot");
  const token = await fetch(`${kw.url}/v1/auth/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ api_key: auth.key }),
  });
  expect(token.status).toBe(200);
  auth.token = (await json(token)).access_token;

  await admin("PUT", `/credentials/${STAGING_NAME}`, { value: STAGING, egress: { base_url: upstream.url } });
  await putProd(PROD);
  await admin("PUT", "/agents/staging-bot/grants", { credentials: [{ name: STAGING_NAME, mode: "read" }] });
  await admin("PUT", "/agents/prod-bot/grants", { credentials: [{ name: PROD_NAME, mode: "read" }] });
});

afterAll(async () => {
  await kw?.close();
  await upstream?.close();
});

describe.each(["key", "token"])("an agent granted staging, with its %s", (via) => {
  const staging = () => auth[via] as string;

  it("reads staging only from GET /v1/credentials, and the listing does not move when prod changes", async () => {
    const res = await read(staging());
    expect(res.status).toBe(200);
    const text = await res.text();
    const body = JSON.parse(text);
    expect(Object.keys(body.credentials)).toEqual([STAGING_NAME]);
    expect(body.credentials[STAGING_NAME].value).toBe(STAGING);
    expect(text).not.toMatch(/prod/i);

    await putProd();
    const after = await read(staging());
    expect(await after.text()).toBe(text);
    expect(after.headers.get("etag")).toBe(res.headers.get("etag"));
    const cached = await fetch(`${kw.url}/v1/credentials`, {
      headers: { authorization: `Bearer ${staging()}`, "if-none-match": res.headers.get("etag")! },
    });
    expect(cached.status).toBe(304);

    // The prod agent, through the same endpoint, does get prod.
    const prod = await json(await read(prodKey));
    expect(Object.keys(prod.credentials)).toEqual([PROD_NAME]);
  });

  it("gets no prod update or removal from ?since=", async () => {
    const { cursor } = await json(await read(staging()));
    const prodCursor = (await json(await read(prodKey))).cursor;
    await putProd();
    const quiet = await (await read(staging(), `?since=${cursor}`)).text();
    expect(JSON.parse(quiet)).toMatchObject({ credentials: {}, removed: [] });
    expect(quiet).not.toMatch(/prod/i);

    await admin("DELETE", `/credentials/${PROD_NAME}`);
    try {
      const afterDelete = await (await read(staging(), `?since=${cursor}`)).text();
      expect(JSON.parse(afterDelete)).toMatchObject({ credentials: {}, removed: [] });
      expect(afterDelete).not.toMatch(/prod/i);
      // The prod agent hears of the removal.
      expect((await json(await read(prodKey, `?since=${prodCursor}`))).removed).toEqual([PROD_NAME]);
    } finally {
      await putProd();
      await admin("PUT", "/agents/prod-bot/grants", { credentials: [{ name: PROD_NAME, mode: "read" }] });
    }
  });

  it("is sent no event for prod on the SSE stream", async () => {
    const s = await openSse(`${kw.url}/v1/credentials/events`, { authorization: `Bearer ${staging()}` });
    const p = await openSse(`${kw.url}/v1/credentials/events`, { authorization: `Bearer ${prodKey}` });
    try {
      expect(s.status).toBe(200);
      await Promise.all([s.nextComment(), p.nextComment()]);
      await putProd();
      await admin("DELETE", `/credentials/${PROD_NAME}`);
      await putProd();
      const { version } = await admin("PUT", `/credentials/${STAGING_NAME}`, { value: STAGING });
      // Events arrive in order: had any prod event been sent, it would come first.
      const first = await s.next();
      expect(first.event).toBe("changed");
      expect(JSON.parse(first.data)).toEqual({ name: STAGING_NAME, version });
      expect(s.raw()).not.toMatch(/prod/i);
      // The prod agent's stream carries prod's change and removal.
      const heard = [await p.next(), await p.next()];
      expect(heard.map((e) => [e.event, JSON.parse(e.data).name])).toEqual([
        ["changed", PROD_NAME],
        ["removed", PROD_NAME],
      ]);
    } finally {
      s.close();
      p.close();
      await admin("PUT", "/agents/prod-bot/grants", { credentials: [{ name: PROD_NAME, mode: "read" }] });
    }
  });

  it("is refused prod through egress with 403 credential_not_granted, and prod's upstream is never called", async () => {
    const before = upstream.requests.length;
    const res = await egress(staging(), PROD_NAME);
    expect(res.status).toBe(403);
    const text = await res.text();
    expect(JSON.parse(text).error).toMatchObject({
      code: "credential_not_granted",
      message: `credential ${PROD_NAME} is not granted to this agent`,
    });
    expect(text).not.toContain(PROD);
    expect(upstream.requests.length).toBe(before);

    // Its own environment goes through, with its own secret; the prod agent's with prod's.
    expect((await egress(staging(), STAGING_NAME)).status).toBe(200);
    expect(upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${STAGING}`);
    expect((await egress(prodKey, PROD_NAME)).status).toBe(200);
    expect(upstream.requests.at(-1)?.headers.authorization).toMatch(/^Bearer sk-prod-/);
  });

  it("gets the same answer for names that do not exist as for prod's", async () => {
    const answer = async (name: string, shown = name) => {
      const res = await egress(staging(), name);
      const { error } = await json(res);
      return {
        status: res.status,
        code: error.code,
        message: error.message.replace(shown, "<name>"),
        fields: Object.keys(error).sort(),
      };
    };
    const ungranted = await answer(PROD_NAME);
    expect(ungranted.status).toBe(403);
    for (const name of ["dev.openai_key", "prod.openai_key2", "PROD.openai_key", "prod.anthropic_key"]) {
      expect(await answer(name), name).toEqual(ungranted);
    }
    // An escaped name is decoded first: still prod, still refused the same way.
    expect(await answer("prod%2Eopenai_key", PROD_NAME)).toEqual(ungranted);
    // A name no credential could have is not even repeated back.
    expect(await answer("prod.openai_key%00", "(invalid name)")).toEqual(ungranted);
  });
});
