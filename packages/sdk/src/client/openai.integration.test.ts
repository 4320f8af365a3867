import OpenAI, { AzureOpenAI } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// The real server and local stand-ins for an OAuth token endpoint and (Azure) OpenAI, started in
// process (test-only imports: the SDK itself depends on neither the server nor openai).
import { type FakeOpenAI, startFakeOpenAI } from "../../../server/test-support/fake-openai.js";
import { type FakeTokenEndpoint, startFakeTokenEndpoint } from "../../../server/test-support/fake-token-endpoint.js";
import { startTestServer, type TestServer } from "../../../server/test-support/server.js";
import { Keyward } from "./keyward.js";

/**
 * The real `openai` package (v6) driven with credentials from Keyward: `tokenProvider` as the
 * `azureADTokenProvider` of `AzureOpenAI` (an `oauth2_client_credentials` credential), and a plain
 * `OpenAI` client built from `kw.get` and rebuilt when its key rotates.
 */

const CLIENT_SECRET = "azure-client-secret-5Jk8Qw2Zr7";
const AZURE_SCOPE = "https://cognitiveservices.azure.com/.default";

let server: TestServer;
let tokens: FakeTokenEndpoint;
let azure: FakeOpenAI;
let openai: FakeOpenAI;
let kw: Keyward;

async function admin(method: string, path: string, body?: unknown) {
  const res = await server.admin(method, path, body);
  if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** (Re)configures the token provider; Keyward fetches a token before answering. */
function putAzureToken() {
  return admin("PUT", "/credentials/azure_token", {
    type: "oauth2_client_credentials",
    token_url: tokens.url,
    client_id: "azure-app",
    client_secret: CLIENT_SECRET,
    scope: AZURE_SCOPE,
  });
}

/** Resolves on the first `change` of `name` to at least `version` (listening starts now). */
function changeOf(name: string, version = 0): Promise<number> {
  return new Promise((resolve) => {
    const listener = (e: { name: string; version: number }) => {
      if (e.name !== name || e.version < version) return;
      kw.off("change", listener);
      resolve(e.version);
    };
    kw.on("change", listener);
  });
}

beforeAll(async () => {
  tokens = await startFakeTokenEndpoint({ clientId: "azure-app", clientSecret: CLIENT_SECRET });
  azure = await startFakeOpenAI();
  openai = await startFakeOpenAI({ keys: ["sk-first-9Fh3Lq"] });
  server = await startTestServer({}, { credentials: { heartbeatMs: 200 } });
  await admin("POST", "/agents", { name: "assistant", upstream: "http://127.0.0.1:9" });
  const agentKey = (await admin("POST", "/keys", { owner: "agent:assistant", scopes: [] })).secret as string;
  const created = await putAzureToken();
  expect(created).toMatchObject({ name: "azure_token", type: "oauth2_client_credentials", version: 1, status: "ok" });
  await admin("PUT", "/credentials/openai_key", { value: "sk-first-9Fh3Lq" });
  await admin("PUT", "/agents/assistant/grants", {
    credentials: [
      { name: "azure_token", mode: "read" },
      { name: "openai_key", mode: "read" },
    ],
  });
  kw = await Keyward.connect({ url: server.url, token: agentKey });
});

afterAll(async () => {
  await kw?.close();
  await server?.close();
  await Promise.all([tokens?.close(), azure?.close(), openai?.close()]);
});

describe("AzureOpenAI with kw.tokenProvider as its azureADTokenProvider", () => {
  let client: AzureOpenAI;
  const ask = async (content: string) => {
    const completion = await client.chat.completions.create({ model: "gpt", messages: [{ role: "user", content }] });
    return { answer: completion.choices[0]?.message.content, seen: azure.requests.at(-1)! };
  };

  beforeAll(() => {
    client = new AzureOpenAI({
      azureADTokenProvider: kw.tokenProvider("azure_token"),
      endpoint: azure.url,
      apiVersion: "2024-10-21",
      deployment: "gpt",
      maxRetries: 0,
    });
  });

  it("sends the token Keyward fetched from the token endpoint as a Bearer token", async () => {
    expect(tokens.requests[0]?.form.get("scope")).toBe(AZURE_SCOPE);
    const { answer, seen } = await ask("hello azure");
    expect(answer).toBe("echo: hello azure");
    expect(seen.method).toBe("POST");
    expect(seen.path).toBe("/openai/deployments/gpt/chat/completions");
    expect(seen.query.get("api-version")).toBe("2024-10-21");
    expect(seen.headers.authorization).toBe("Bearer tok-1");
    expect(seen.headers["api-key"]).toBeUndefined();
  });

  it("uses each new token on the next call, without a new client or a reconnect", async () => {
    // An admin re-saves the provider: Keyward fetches a new token at once.
    const rotated = changeOf("azure_token", 2);
    const { version } = await putAzureToken();
    expect(await rotated).toBe(version);
    expect(tokens.issued).toBe(2);
    expect((await ask("after rotation")).seen.headers.authorization).toBe("Bearer tok-2");

    // A short-lived token: Keyward replaces it by itself when a third of its lifetime is left.
    tokens.behave({ kind: "token", expiresIn: 3 });
    const arrived = changeOf("azure_token", version + 1);
    const shortLived = (await putAzureToken()).version as number;
    tokens.behave({ kind: "token", expiresIn: 3600 });
    const refreshing = changeOf("azure_token", shortLived + 1);
    expect(await arrived).toBe(shortLived);
    expect(kw.get("azure_token")).toBe("tok-3");
    const refreshed = await refreshing;
    expect(tokens.issued).toBe(4);
    const { answer, seen } = await ask("after refresh");
    expect(answer).toBe("echo: after refresh");
    expect(seen.headers.authorization).toBe("Bearer tok-4");
    const view = await admin("GET", "/credentials/azure_token");
    expect(view.version).toBe(refreshed);
    expect(view.versions.map((v: { source: string }) => v.source)).toEqual(["token", "token", "token", "token"]);
  });

  it("works as an Azure TokenCredential: getToken → {token, expiresOnTimestamp}", async () => {
    const before = Date.now();
    const credential = kw.tokenCredential("azure_token");
    const at = await credential.getToken(AZURE_SCOPE);
    expect(at.token).toBe(kw.get("azure_token"));
    expect(at.tokenType).toBe("Bearer");
    // The expiry Keyward recorded for the token (expires_in 3600 at the endpoint).
    const view = await admin("GET", "/credentials/azure_token");
    expect(at.expiresOnTimestamp).toBe(Date.parse(view.expires_at));
    expect(at.expiresOnTimestamp).toBeGreaterThan(before + 3_500_000);
    expect(at.expiresOnTimestamp).toBeLessThanOrEqual(Date.now() + 3_600_000);
    expect(await credential.getToken([AZURE_SCOPE])).toEqual(at);
  });
});

describe("OpenAI with its apiKey from kw.get, rebuilt on change", () => {
  it("calls with the current key, and a client rebuilt after the change event uses the rotated one", async () => {
    const build = () => new OpenAI({ apiKey: kw.get("openai_key"), baseURL: `${openai.url}/v1`, maxRetries: 0 });
    let client = build();
    const first = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "hi" }],
    });
    expect(first.choices[0]?.message.content).toBe("echo: hi");
    expect(openai.requests.at(-1)?.headers.authorization).toBe("Bearer sk-first-9Fh3Lq");

    // The key is rotated at the provider (the old one stops working) and the new one saved in Keyward.
    const rebuilt = new Promise<void>((resolve) => {
      kw.on("change", ({ name }) => {
        if (name !== "openai_key") return;
        client = build();
        resolve();
      });
    });
    const old = client;
    openai.accept(["sk-second-2Mx7Tc"]);
    await admin("PUT", "/credentials/openai_key", { value: "sk-second-2Mx7Tc" });
    await rebuilt;

    const stale = await old.chat.completions
      .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "old" }] })
      .catch((err: unknown) => err);
    expect(stale).toBeInstanceOf(OpenAI.AuthenticationError);

    const second = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "rotated" }],
    });
    expect(second.choices[0]?.message.content).toBe("echo: rotated");
    expect(openai.requests.at(-1)?.headers.authorization).toBe("Bearer sk-second-2Mx7Tc");
  });
});
