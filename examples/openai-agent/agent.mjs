// An agent that calls OpenAI with a key it gets from Keyward: no key in its code, its environment
// or its config files. It holds the key in memory only, rebuilds its OpenAI client when the key is
// rotated (pushed by Keyward within a second, no restart), and keeps answering from memory if
// Keyward is briefly unreachable.
//
// Run: KEYWARD_URL=http://127.0.0.1:8080 KEYWARD_AGENT_KEY=kwk_… PORT=4200 node examples/openai-agent/agent.mjs
// (OPENAI_BASE_URL points it at another OpenAI-compatible server; see README.md.)
import http from "node:http";
import { pathToFileURL } from "node:url";
import { Keyward, KeywardError } from "@keyward/sdk";
import OpenAI from "openai";

const CREDENTIAL = "openai_key";
const MAX_BODY_BYTES = 64 * 1024;

/**
 * The agent's settings, as they could come from a YAML file: the secret appears only as a
 * placeholder, and `kw.resolve` fills it in from memory when the settings are used.
 */
function settingsTemplate(openaiBaseUrl) {
  return {
    chat: { model: "gpt-4o-mini" },
    // Embeddings are called with plain fetch (no SDK), configured by URL and headers alone.
    embeddings: {
      url: `${openaiBaseUrl}/embeddings`,
      model: "text-embedding-3-small",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a Keyward placeholder, resolved by kw.resolve
      headers: { authorization: "Bearer ${credentials.openai_key}", "content-type": "application/json" },
    },
  };
}

/**
 * Connects to Keyward, then serves `POST /chat {message}` → `{answer, model}` and
 * `POST /embed {text}` → `{dimensions, model}`. Resolves once listening.
 */
export async function startOpenAIAgent({
  keywardUrl,
  agentKey,
  port = 0,
  host = "127.0.0.1",
  openaiBaseUrl = "https://api.openai.com/v1",
  log = console.log,
}) {
  const kw = await Keyward.connect({ url: keywardUrl, token: agentKey });
  const baseURL = openaiBaseUrl.replace(/\/+$/, "");
  const template = settingsTemplate(baseURL);

  // An OpenAI client keeps the key it was built with: build a new one when the key rotates.
  // (openai v6 also accepts `apiKey: async () => kw.get("openai_key")`, read before each request.)
  const buildClient = () => new OpenAI({ apiKey: kw.get(CREDENTIAL), baseURL });
  let client = buildClient();
  kw.on("change", ({ name, version }) => {
    if (name !== CREDENTIAL) return;
    client = buildClient();
    log(`${CREDENTIAL} is now version ${version}: OpenAI client rebuilt`);
  });
  kw.on("error", (err) => log(`keyward: ${err.code}: ${err.message} (serving the last good values)`));

  const routes = {
    "/chat": async ({ message }) => {
      if (typeof message !== "string" || message === "") throw badRequest("message: a non-empty string");
      const { model } = template.chat;
      const completion = await client.chat.completions.create({
        model,
        messages: [{ role: "user", content: message }],
      });
      return { answer: completion.choices[0]?.message.content ?? "", model: completion.model };
    },
    "/embed": async ({ text }) => {
      if (typeof text !== "string" || text === "") throw badRequest("text: a non-empty string");
      // Resolved per request, from memory: a rotated key is used from the next request on.
      const { embeddings } = kw.resolve(template);
      const res = await fetch(embeddings.url, {
        method: "POST",
        headers: embeddings.headers,
        body: JSON.stringify({ model: embeddings.model, input: text }),
      });
      const body = await res.json();
      if (!res.ok) throw new UpstreamError(res.status, body.error?.message ?? `status ${res.status}`);
      return { dimensions: body.data[0].embedding.length, model: body.model };
    },
  };

  const server = http.createServer(async (req, res) => {
    try {
      const route = routes[new URL(req.url ?? "/", "http://agent").pathname];
      if (req.method !== "POST" || !route) {
        send(res, 404, { error: { code: "not_found", message: "POST /chat or POST /embed" } });
        return;
      }
      send(res, 200, await route(await readJson(req)));
    } catch (err) {
      send(res, ...failure(err));
    }
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject); // a busy port: the caller reports it, not an uncaught exception
    server.listen(port, host, resolve);
  });
  const { port: actual } = server.address();

  return {
    url: `http://${host}:${actual}`,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await kw.close();
    },
  };
}

class BadRequest extends Error {}

/** OpenAI answered with an error to a plain fetch (the SDK throws OpenAI.APIError instead). */
class UpstreamError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** What the caller is told: OpenAI's refusal as it came, Keyward's problems by code. */
function failure(err) {
  if (err instanceof BadRequest) return [400, { error: { code: "invalid_request", message: err.message } }];
  if (err instanceof OpenAI.APIError || err instanceof UpstreamError) {
    return [502, { error: { code: "openai_error", status: err.status ?? null, message: err.message } }];
  }
  // Unreadable or stale credentials: say which, never a value (KeywardError messages hold none).
  if (err instanceof KeywardError) return [503, { error: { code: err.code, message: err.message } }];
  // No detail: an unexpected error's message could carry anything.
  return [500, { error: { code: "internal", message: "the agent failed unexpectedly" } }];
}

const badRequest = (message) => new BadRequest(message);

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) }).end(text);
}

async function readJson(req) {
  let size = 0;
  const chunks = [];
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw badRequest(`the body is over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  try {
    const value = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    if (value !== null && typeof value === "object" && !Array.isArray(value)) return value;
  } catch {}
  throw badRequest("the body must be a JSON object");
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { KEYWARD_URL, KEYWARD_AGENT_KEY } = process.env;
  if (!KEYWARD_URL || !KEYWARD_AGENT_KEY) {
    console.error("set KEYWARD_URL (e.g. http://127.0.0.1:8080) and KEYWARD_AGENT_KEY (the agent's kwk_… key)");
    process.exit(2);
  }
  let agent;
  try {
    agent = await startOpenAIAgent({
      keywardUrl: KEYWARD_URL,
      agentKey: KEYWARD_AGENT_KEY,
      port: Number(process.env.PORT ?? 4200),
      ...(process.env.OPENAI_BASE_URL ? { openaiBaseUrl: process.env.OPENAI_BASE_URL } : {}),
    });
  } catch (err) {
    console.error(`cannot start: ${err.code ?? "error"}: ${err.message}`);
    process.exit(1);
  }
  console.log(`openai-agent listening on ${agent.url}`);
  const stop = async () => {
    await agent.close();
    process.exit(0);
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
