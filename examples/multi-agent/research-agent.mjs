// The `research` agent: an Express app behind Keyward. It trusts nothing but a Keyward access token
// whose audience is "research", checked by the SDK's Express middleware; the caller's own key never
// reaches it. Run on its own: KEYWARD_URL=http://127.0.0.1:8080 PORT=4101 node research-agent.mjs
import { expressMiddleware, verifier } from "@keyward/sdk";
import express from "express";
import { actedFor } from "./acted-for.mjs";
import { isMain, keywardUrlFromEnv, openServer } from "./serve.mjs";

/** A small, fixed library so the example needs no model and answers the same way every time. */
const LIBRARY = [
  {
    id: "rfc8693",
    title: "RFC 8693: OAuth 2.0 Token Exchange",
    text: "A client exchanges a subject token for a new token bound to another audience. The act claim names the party acting on behalf of the subject, nested for delegation chains.",
  },
  {
    id: "rfc9068",
    title: "RFC 9068: JWT Profile for OAuth 2.0 Access Tokens",
    text: "Access tokens are signed JWTs of type at+jwt carrying iss, sub, aud, exp, client_id and scope, so a resource server can verify them without calling the issuer.",
  },
  {
    id: "least-privilege",
    title: "Least privilege for agent chains",
    text: "Each agent in a chain should receive a short-lived token for exactly one audience with scopes no wider than the original caller's, so a leaked token opens one door for minutes.",
  },
  {
    id: "key-rotation",
    title: "Rotating API keys without downtime",
    text: "Issue the new key, let the old one work for a grace period, then revoke it; revocation must reach every replica on the next request.",
  },
];

const MAX_QUERY_CHARS = 500;

/**
 * The research agent as a request listener. `POST /search` with `{query}` answers
 * `{query, findings: [{id, title, snippet}], acted_for: {sub, act, scope}}`, where `acted_for`
 * comes from the verified token: whom the request is for and which agents relayed it.
 */
export function createResearchAgent({ keywardUrl }) {
  const app = express();
  app.disable("x-powered-by");
  // First, before the body is even read: an unauthenticated caller costs one signature check.
  app.use(expressMiddleware(verifier({ issuer: keywardUrl, audience: "research" })));
  app.use(express.json({ limit: "64kb" }));

  app.post("/search", (req, res) => {
    const query = typeof req.body?.query === "string" ? req.body.query.trim() : "";
    if (query.length === 0 || query.length > MAX_QUERY_CHARS) {
      res
        .status(400)
        .json(errorBody("invalid_request", `query: a non-empty string of at most ${MAX_QUERY_CHARS} characters`));
      return;
    }
    res.json({ query, findings: search(query), acted_for: actedFor(req.keyward) });
  });

  app.use((_req, res) => {
    res.status(404).json(errorBody("not_found", "POST /search is the only route"));
  });
  // Express 5 sends body-parser failures here; answer them in the same JSON shape as everything else.
  app.use((err, _req, res, _next) => {
    const status = Number.isInteger(err?.status) && err.status >= 400 && err.status < 500 ? err.status : 500;
    res
      .status(status)
      .json(
        errorBody(
          status === 500 ? "internal" : "invalid_request",
          status === 500 ? "internal error" : "the body is not valid JSON",
        ),
      );
  });
  return app;
}

function search(query) {
  const terms = words(query);
  return LIBRARY.map((doc) => {
    const haystack = new Set(words(`${doc.title} ${doc.text}`));
    return { doc, score: terms.filter((t) => haystack.has(t)).length };
  })
    .filter((hit) => hit.score > 0)
    .sort((a, b) => b.score - a.score || a.doc.id.localeCompare(b.doc.id))
    .slice(0, 3)
    .map(({ doc }) => ({ id: doc.id, title: doc.title, snippet: doc.text }));
}

function words(text) {
  return text.toLowerCase().match(/[a-z0-9+]{3,}/g) ?? [];
}

function errorBody(code, message) {
  return { error: { code, message } };
}

if (isMain(import.meta.url)) {
  const listener = createResearchAgent({ keywardUrl: keywardUrlFromEnv() });
  const server = await openServer({ port: Number(process.env.PORT ?? 4101) });
  server.serve(listener);
  console.log(`research agent listening on ${server.url}`);
}
