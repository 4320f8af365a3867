// A local stand-in for the OpenAI API, so the examples run on a machine with no internet and no
// OpenAI account. It speaks the part of the API the examples use, in OpenAI's own shapes (the
// `openai` client parses its answers): `GET /v1/models`, `GET /v1/models/{id}`,
// `POST /v1/chat/completions` (with `stream: true` too) and `POST /v1/embeddings`. It answers
// only requests that carry the key it was told to expect, as `Authorization: Bearer …`: an
// example that works against it has proved that Keyward delivered the key.
//
//   node examples/shared/openai-standin.mjs [--port 4299]
// prints the URL and the key it accepts (a fresh `sk-standin-…`, or OPENAI_STANDIN_KEY); store
// that key in Keyward as the example's credential and point the example at the URL.
import { randomBytes } from "node:crypto";
import http from "node:http";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const MODELS = ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"];
const MAX_BODY_BYTES = 1024 * 1024;

/** A key shaped like OpenAI's project keys, fresh for every run: nothing real is ever needed. */
export function newStandinKey() {
  return `sk-standin-${randomBytes(18).toString("base64url")}`;
}

/**
 * Starts the stand-in. `keys` are the API keys it accepts (`accept` replaces them, e.g. after a
 * rotation). `onRequest({method, path, keyAccepted})` hears every request (never the key itself).
 * Resolves with `{url, baseURL, accept, close}` once listening; `baseURL` ends in `/v1`.
 */
export async function startOpenAIStandin({ keys, port = 0, host = "127.0.0.1", onRequest } = {}) {
  if (!Array.isArray(keys) || keys.length === 0) throw new Error("the stand-in needs the key(s) it accepts");
  let accepted = new Set(keys);
  let served = 0;

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://standin");
    const key = /^Bearer (\S+)$/.exec(req.headers.authorization ?? "")?.[1];
    const keyAccepted = key !== undefined && accepted.has(key);
    onRequest?.({ method: req.method, path: url.pathname, keyAccepted });
    let body;
    try {
      body = await readJson(req);
    } catch (err) {
      send(res, 400, openaiError(err.message, "invalid_request_error", null));
      return;
    }
    if (!keyAccepted) {
      // As OpenAI does: the key it got, masked but for its ends.
      const shown = key === undefined ? "(none)" : `${key.slice(0, 3)}${"*".repeat(8)}${key.slice(-4)}`;
      send(res, 401, openaiError(`Incorrect API key provided: ${shown}.`, "invalid_request_error", "invalid_api_key"));
      return;
    }
    const route = `${req.method} ${url.pathname}`;
    if (route === "GET /v1/models") {
      send(res, 200, { object: "list", data: MODELS.map(model) });
    } else if (req.method === "GET" && url.pathname.startsWith("/v1/models/")) {
      const id = decodeURIComponent(url.pathname.slice("/v1/models/".length));
      if (MODELS.includes(id)) send(res, 200, model(id));
      else send(res, 404, openaiError(`The model '${id}' does not exist`, "invalid_request_error", "model_not_found"));
    } else if (route === "POST /v1/chat/completions") {
      if (!Array.isArray(body?.messages)) {
        send(res, 400, openaiError("'messages' is a required property", "invalid_request_error", null));
        return;
      }
      served++;
      chatCompletion(res, body, `chatcmpl-standin-${served}`);
    } else if (route === "POST /v1/embeddings") {
      const input = Array.isArray(body?.input) ? body.input : [String(body?.input ?? "")];
      send(res, 200, {
        object: "list",
        data: input.map((text, index) => {
          const vector = embed(String(text));
          // The openai client asks for base64 (float32, little-endian) and decodes it itself.
          const embedding =
            body?.encoding_format === "base64"
              ? Buffer.from(new Float32Array(vector).buffer).toString("base64")
              : vector;
          return { object: "embedding", index, embedding };
        }),
        model: body?.model ?? "text-embedding-3-small",
        usage: { prompt_tokens: input.length, total_tokens: input.length },
      });
    } else {
      send(res, 404, openaiError(`Unknown request URL: ${route}.`, "invalid_request_error", "unknown_url"));
    }
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, resolve);
  });
  const url = `http://${host}:${server.address().port}`;
  return {
    url,
    baseURL: `${url}/v1`,
    accept(newKeys) {
      accepted = new Set(newKeys);
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The assistant says what it is and repeats the last user message: no model, but a real round trip. */
function chatCompletion(res, body, id) {
  const modelName = body.model ?? "gpt-4o-mini";
  const lastUser = body.messages.filter((m) => m?.role === "user").at(-1);
  const said = typeof lastUser?.content === "string" ? lastUser.content : "";
  const content = `(offline stand-in for ${modelName}) You said: ${said}`;
  const created = Math.floor(Date.now() / 1000);
  if (body.stream !== true) {
    send(res, 200, {
      id,
      object: "chat.completion",
      created,
      model: modelName,
      choices: [
        { index: 0, message: { role: "assistant", content, refusal: null }, logprobs: null, finish_reason: "stop" },
      ],
      usage: {
        prompt_tokens: said.length,
        completion_tokens: content.length,
        total_tokens: said.length + content.length,
      },
    });
    return;
  }
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  const chunk = (delta, finish) =>
    `data: ${JSON.stringify({
      id,
      object: "chat.completion.chunk",
      created,
      model: modelName,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    })}\n\n`;
  res.write(chunk({ role: "assistant", content: "" }, null));
  for (const word of content.split(/(?<= )/)) res.write(chunk({ content: word }, null));
  res.write(chunk({}, "stop"));
  res.end("data: [DONE]\n\n");
}

/** A small deterministic vector: the same text always gets the same embedding. */
function embed(text) {
  const v = [0, 0, 0, 0, 0, 0, 0, 0];
  for (let i = 0; i < text.length; i++) v[i % 8] += text.charCodeAt(i) / 1000;
  const norm = Math.hypot(...v) || 1;
  return v.map((x) => Number((x / norm).toFixed(6)));
}

const model = (id) => ({ id, object: "model", created: 1715367049, owned_by: "system" });

const openaiError = (message, type, code) => ({ error: { message, type, param: null, code } });

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) }).end(text);
}

async function readJson(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk);
  }
  if (size > MAX_BODY_BYTES) throw new Error("the body is over 1 MiB");
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new Error("We could not parse the JSON body of your request.");
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  let port;
  try {
    port = Number(parseArgs({ options: { port: { type: "string", default: "4299" } } }).values.port);
  } catch (err) {
    console.error(`openai-standin: ${err.message}`);
    process.exit(2);
  }
  const key = process.env.OPENAI_STANDIN_KEY || newStandinKey();
  let standin;
  try {
    standin = await startOpenAIStandin({ keys: [key], port });
  } catch (err) {
    console.error(`openai-standin: cannot listen on port ${port}: ${err.code ?? err.message}`);
    process.exit(1);
  }
  console.log(`OpenAI stand-in listening on ${standin.url} (OPENAI_BASE_URL=${standin.baseURL})`);
  // A made-up key, valid only here: printing it is how the person running the example gets it.
  console.log(`it accepts only this API key: ${key}`);
  const stop = () => standin.close().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
