// The `tools` agent: a Hono app that speaks the LangServe protocol (`POST /invoke` with
// `{input, config?, kwargs?}` → `{output, metadata: {run_id, feedback_tokens}}`), so LangChain's
// RemoteRunnable can call it, and that accepts only Keyward access tokens with audience "tools".
// Run on its own: KEYWARD_URL=http://127.0.0.1:8080 PORT=4102 node tools-agent.mjs
import { randomUUID } from "node:crypto";
import { getRequestListener } from "@hono/node-server";
import { honoMiddleware, verifier } from "@keyward/sdk";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { actedFor } from "./acted-for.mjs";
import { isMain, keywardUrlFromEnv, openServer } from "./serve.mjs";

const MAX_TEXT_CHARS = 20_000;
const STOP_WORDS = new Set(
  "the and for with that this from are was were its into than then them they their have has not but any all can one per each should must".split(
    " ",
  ),
);

/**
 * The tools agent as a node:http request listener. Its one runnable, `text_stats`, takes
 * `{text}` and returns `{words, keywords, reading_time_s, acted_for}`; `acted_for` is read from
 * the verified token (LangServe's `metadata` holds only the run id, so it travels in `output`).
 */
export function createToolsAgent({ keywardUrl }) {
  const app = new Hono();
  app.use("*", honoMiddleware(verifier({ issuer: keywardUrl, audience: "tools" })));
  app.use(
    "*",
    bodyLimit({ maxSize: 64 * 1024, onError: (c) => c.json(validationError("body", "the body is over 64 KiB"), 413) }),
  );

  app.post("/invoke", async (c) => {
    let body;
    try {
      body = await c.req.json();
    } catch {
      return c.json(validationError("body", "the body is not valid JSON"), 422);
    }
    const text = typeof body?.input === "string" ? body.input : body?.input?.text;
    if (typeof text !== "string" || text.length > MAX_TEXT_CHARS) {
      return c.json(
        validationError("input", `input: {text} with a string of at most ${MAX_TEXT_CHARS} characters`),
        422,
      );
    }
    return c.json({
      output: { ...textStats(text), acted_for: actedFor(c.get("keyward")) },
      metadata: { run_id: randomUUID(), feedback_tokens: [] },
    });
  });
  app.notFound((c) => c.json({ error: { code: "not_found", message: "POST /invoke is the only route" } }, 404));
  return getRequestListener(app.fetch);
}

function textStats(text) {
  const words = text.toLowerCase().match(/[a-z0-9]+(?:[-+][a-z0-9]+)*/g) ?? [];
  const counts = new Map();
  for (const w of words) {
    if (w.length < 3 || STOP_WORDS.has(w) || /^\d+$/.test(w)) continue;
    counts.set(w, (counts.get(w) ?? 0) + 1);
  }
  const keywords = [...counts]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, 5)
    .map(([word]) => word);
  // About 200 words a minute.
  return { words: words.length, keywords, reading_time_s: Math.ceil((words.length / 200) * 60) };
}

/** FastAPI's validation error shape, which LangServe answers with 422. */
function validationError(loc, msg) {
  return { detail: [{ loc: ["body", loc], msg, type: "value_error" }] };
}

if (isMain(import.meta.url)) {
  const listener = createToolsAgent({ keywardUrl: keywardUrlFromEnv() });
  const server = await openServer({ port: Number(process.env.PORT ?? 4102) });
  server.serve(listener);
  console.log(`tools agent listening on ${server.url}`);
}
