// The `workflow` agent: a plain node:http server behind Keyward. The gateway forwards it the
// caller's request with a Keyward JWT (aud = workflow, sub = the caller). For each downstream
// agent it exchanges that JWT — presenting its own agent key as the actor — for a token bound to
// that one agent and down-scoped to it, then calls `research` with fetch and `tools` with
// LangChain's RemoteRunnable, both through the Keyward gateway, and combines the answers.
// Run on its own: KEYWARD_URL=… WORKFLOW_AGENT_KEY=kwk_… PORT=4100 node workflow-agent.mjs
import { ExchangeError, exchangeToken, nodeMiddleware, verifier } from "@keyward/sdk";
import { RemoteRunnable } from "@langchain/core/runnables/remote";
import { isMain, keywardUrlFromEnv, openServer, requiredEnv, sendError } from "./serve.mjs";

const MAX_BODY_BYTES = 64 * 1024;
const MAX_QUESTION_CHARS = 500;
const DOWNSTREAM_TIMEOUT_MS = 10_000;
const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

/**
 * The workflow agent as a node:http request listener. `POST /run` with `{question}` answers
 * `{question, caller, complete, answer, research, tools}`, where each leg is
 * `{ok: true, result}` or `{ok: false, stage: "exchange" | "call", error, message}`: one refused
 * leg (say the caller may not use `tools`) is reported, not fatal. 200 when at least one leg
 * worked, 502 when none did.
 */
export function createWorkflowAgent({ keywardUrl, agentKey }) {
  const auth = nodeMiddleware(verifier({ issuer: keywardUrl, audience: "workflow" }));
  const downstream = createDownstream({ keywardUrl, agentKey });

  return async (req, res) => {
    try {
      const caller = await auth(req, res);
      if (!caller) return; // the SDK already answered 401/403
      const path = new URL(req.url ?? "/", "http://workflow").pathname;
      if (req.method !== "POST" || path !== "/run") {
        sendError(res, 404, "not_found", "POST /run is the only route");
        return;
      }
      const body = await readJson(req);
      if (!body.ok) {
        sendError(res, body.status, body.status === 413 ? "payload_too_large" : "invalid_request", body.message);
        return;
      }
      const question = typeof body.value?.question === "string" ? body.value.question.trim() : "";
      if (question.length === 0 || question.length > MAX_QUESTION_CHARS) {
        sendError(
          res,
          400,
          "invalid_request",
          `question: a non-empty string of at most ${MAX_QUESTION_CHARS} characters`,
        );
        return;
      }
      // Exactly the value the middleware verified: the JWT the gateway forwarded, never the caller's key.
      const subjectToken = BEARER.exec(req.headers.authorization ?? "")[1];
      const result = await runWorkflow({ downstream, caller, subjectToken, question });
      sendJson(res, result.research.ok || result.tools.ok ? 200 : 502, result);
    } catch {
      // No detail: an unexpected error's message could carry anything, tokens included.
      if (!res.headersSent) sendError(res, 500, "internal", "the workflow failed unexpectedly");
      else res.destroy();
    }
  };
}

async function runWorkflow({ downstream, caller, subjectToken, question }) {
  const research = await downstream.leg("research", caller, subjectToken, (bearer) =>
    downstream.research(bearer, question),
  );
  // The tools agent analyses what research found, or the question itself when research failed.
  const text = research.ok
    ? research.result.findings.map((f) => `${f.title}. ${f.snippet}`).join("\n") || question
    : question;
  const tools = await downstream.leg("tools", caller, subjectToken, (bearer) => downstream.tools(bearer, text));
  return {
    question,
    caller: caller.subject,
    complete: research.ok && tools.ok,
    answer: compose(question, research, tools),
    research,
    tools,
  };
}

function createDownstream({ keywardUrl, agentKey }) {
  return {
    /**
     * One downstream call with its own delegated token. The token asks for `agent:<audience>` and
     * the caller's non-agent scopes only: the research agent gets no authority to call `tools`.
     */
    async leg(audience, caller, subjectToken, call) {
      let delegated;
      try {
        delegated = await exchangeToken({
          url: keywardUrl,
          actorToken: agentKey,
          subjectToken,
          audience,
          scope: [`agent:${audience}`, ...caller.scopes.filter((s) => !s.startsWith("agent:"))],
          timeoutMs: DOWNSTREAM_TIMEOUT_MS,
        });
      } catch (err) {
        if (err instanceof ExchangeError) {
          return { ok: false, stage: "exchange", error: err.error, message: err.errorDescription ?? err.message };
        }
        return {
          ok: false,
          stage: "exchange",
          error: "keyward_unreachable",
          message: "the token endpoint did not answer",
        };
      }
      try {
        return { ok: true, result: await call(delegated.accessToken) };
      } catch (err) {
        if (err instanceof LegError) return { ok: false, stage: "call", error: err.code, message: err.message };
        return { ok: false, stage: "call", error: "upstream_unreachable", message: `${audience} did not answer` };
      }
    },

    /** `research` through the gateway with a plain fetch. */
    async research(bearer, query) {
      const res = await fetch(`${keywardUrl}/agents/research/search`, {
        method: "POST",
        headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
        body: JSON.stringify({ query }),
        signal: AbortSignal.timeout(DOWNSTREAM_TIMEOUT_MS),
      });
      const body = await res.json().catch(() => undefined);
      if (!res.ok) throw LegError.from(res.status, body);
      return body;
    },

    /** `tools` through the gateway with LangChain's RemoteRunnable, the token in its headers. */
    async tools(bearer, text) {
      const runnable = new RemoteRunnable({
        url: `${keywardUrl}/agents/tools`,
        options: { timeout: DOWNSTREAM_TIMEOUT_MS, headers: { Authorization: `Bearer ${bearer}` } },
      });
      try {
        return await runnable.invoke({ text });
      } catch (err) {
        // RemoteRunnable reports a refusal only as an Error "<status> Error: <body>".
        const m = /^(\d{3}) Error: ([\s\S]*)$/.exec(err instanceof Error ? err.message : "");
        if (!m) throw err;
        let body;
        try {
          body = JSON.parse(m[2]);
        } catch {}
        throw LegError.from(Number(m[1]), body);
      }
    },
  };
}

/** A downstream agent (or the gateway in front of it) refused the call. */
class LegError extends Error {
  constructor(code, message, status) {
    super(message);
    this.code = code;
    this.status = status;
  }

  static from(status, body) {
    const e = body?.error;
    return new LegError(
      typeof e?.code === "string" ? e.code : `http_${status}`,
      typeof e?.message === "string" ? e.message : `HTTP ${status}`,
      status,
    );
  }
}

function compose(question, research, tools) {
  const parts = [];
  if (research.ok) {
    const titles = research.result.findings.map((f) => f.title);
    parts.push(
      titles.length > 0
        ? `On "${question}", research found ${titles.length} source${titles.length === 1 ? "" : "s"}: ${titles.join("; ")}.`
        : `On "${question}", research found nothing.`,
    );
  } else {
    parts.push(`Research was not available (${research.error}).`);
  }
  if (tools.ok) {
    parts.push(`Key terms: ${tools.result.keywords.join(", ") || "none"} (${tools.result.words} words analysed).`);
  } else {
    parts.push(`Text analysis was not available (${tools.error}).`);
  }
  return parts.join(" ");
}

async function readJson(req) {
  const chunks = [];
  let size = 0;
  // Read to the end even when too large: leaving the loop early would destroy the socket before
  // the 413 could be sent.
  for await (const chunk of req) {
    size += chunk.length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk);
  }
  if (size > MAX_BODY_BYTES) return { ok: false, status: 413, message: "the body is over 64 KiB" };
  try {
    return { ok: true, value: JSON.parse(Buffer.concat(chunks).toString("utf8")) };
  } catch {
    return { ok: false, status: 400, message: "the body is not valid JSON" };
  }
}

function sendJson(res, status, value) {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

if (isMain(import.meta.url)) {
  const listener = createWorkflowAgent({
    keywardUrl: keywardUrlFromEnv(),
    agentKey: requiredEnv("WORKFLOW_AGENT_KEY", "the workflow agent's own key (kwk_…), its actor token for exchanges"),
  });
  const server = await openServer({ port: Number(process.env.PORT ?? 4100) });
  server.serve(listener);
  console.log(`workflow agent listening on ${server.url}`);
}
