// An agent that uses OpenAI without ever holding the OpenAI key. Its OpenAI client talks to
// Keyward's egress proxy (`/egress/openai_key/v1`) with the agent's own Keyward key as its "API
// key": Keyward checks that key and the agent's grant, removes the key from the request, puts the
// real OpenAI key in its place, forwards the request to api.openai.com, and redacts the OpenAI key
// from the answer. A prompt injection, a debug log or a crash dump of this process cannot leak
// what it never had; rotating the key in Keyward needs nothing from the agent at all.
//
// Run: KEYWARD_URL=http://127.0.0.1:8080 KEYWARD_AGENT_KEY=kwk_… PORT=4300 node examples/egress-agent/agent.mjs
import http from "node:http";
import { pathToFileURL } from "node:url";
import OpenAI from "openai";

const MAX_BODY_BYTES = 64 * 1024;

/**
 * Serves `POST /chat {message}` → `{answer, model}`, calling OpenAI through Keyward's egress proxy
 * for credential `credential` (granted to this agent in `inject` mode). Resolves once listening.
 */
export async function startEgressAgent({
  keywardUrl,
  agentKey,
  credential = "openai_key",
  port = 0,
  host = "127.0.0.1",
  model = "gpt-4o-mini",
}) {
  const client = new OpenAI({
    baseURL: `${keywardUrl.replace(/\/+$/, "")}/egress/${encodeURIComponent(credential)}/v1`,
    // Sent as `Authorization: Bearer kwk_…`: Keyward authenticates the agent with it and strips it.
    apiKey: agentKey,
  });

  const server = http.createServer(async (req, res) => {
    try {
      if (req.method !== "POST" || new URL(req.url ?? "/", "http://agent").pathname !== "/chat") {
        send(res, 404, { error: { code: "not_found", message: "POST /chat" } });
        return;
      }
      const { message } = await readJson(req);
      if (typeof message !== "string" || message === "") throw new BadRequest("message: a non-empty string");
      const completion = await client.chat.completions.create({
        model,
        messages: [{ role: "user", content: message }],
      });
      send(res, 200, { answer: completion.choices[0]?.message.content ?? "", model: completion.model });
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
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      }),
  };
}

class BadRequest extends Error {}

/**
 * What the caller is told. An error from OpenAI passes through as it came (Keyward has already
 * redacted the key from it); a refusal by Keyward (403 credential_not_granted, 401 key_revoked…)
 * comes in the same shape, with Keyward's code.
 */
function failure(err) {
  if (err instanceof BadRequest) return [400, { error: { code: "invalid_request", message: err.message } }];
  if (err instanceof OpenAI.APIError) {
    const code = err.error?.code ?? err.code ?? "upstream_error";
    return [
      502,
      { error: { code: "openai_error", status: err.status ?? null, upstream_code: code, message: err.message } },
    ];
  }
  return [500, { error: { code: "internal", message: "the agent failed unexpectedly" } }];
}

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) }).end(text);
}

async function readJson(req) {
  let size = 0;
  const chunks = [];
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new BadRequest(`the body is over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  try {
    const value = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    if (value !== null && typeof value === "object" && !Array.isArray(value)) return value;
  } catch {}
  throw new BadRequest("the body must be a JSON object");
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { KEYWARD_URL, KEYWARD_AGENT_KEY } = process.env;
  if (!KEYWARD_URL || !KEYWARD_AGENT_KEY) {
    console.error("set KEYWARD_URL (e.g. http://127.0.0.1:8080) and KEYWARD_AGENT_KEY (the agent's kwk_… key)");
    process.exit(2);
  }
  let agent;
  try {
    agent = await startEgressAgent({
      keywardUrl: KEYWARD_URL,
      agentKey: KEYWARD_AGENT_KEY,
      port: Number(process.env.PORT ?? 4300),
      ...(process.env.KEYWARD_CREDENTIAL ? { credential: process.env.KEYWARD_CREDENTIAL } : {}),
    });
  } catch (err) {
    console.error(`cannot start: ${err.code ?? "error"}: ${err.message}`);
    process.exit(1);
  }
  console.log(`egress-agent listening on ${agent.url}`);
  const stop = async () => {
    await agent.close();
    process.exit(0);
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
