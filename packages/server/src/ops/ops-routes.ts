import { timingSafeEqual } from "node:crypto";
import { KeywardError } from "../errors.js";
import { sendJson } from "../http/respond.js";
import type { Router } from "../http/router.js";
import { json } from "../openapi/operation.js";
import type { Db } from "../store/db.js";
import { JwksSchema } from "../tokens/tokens-schemas.js";
import type { Metrics } from "./metrics.js";

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function registerOpsRoutes(
  router: Router,
  deps: { db: Db; metrics: Metrics; metricsToken: string | undefined; jwks: () => unknown },
): void {
  router.get("/healthz", (ctx) => sendJson(ctx.res, 200, { status: "ok" }));
  router.get("/readyz", async (ctx) => {
    try {
      await deps.db.ping();
      sendJson(ctx.res, 200, { status: "ready" });
    } catch {
      sendJson(ctx.res, 503, { status: "unavailable", reason: "store unreachable" });
    }
  });
  router.get("/metrics", async (ctx) => {
    if (deps.metricsToken) {
      const auth = ctx.req.headers.authorization ?? "";
      if (!sameSecret(auth, `Bearer ${deps.metricsToken}`))
        throw new KeywardError("unauthorized", "metrics token required");
    }
    const body = await deps.metrics.registry.metrics();
    ctx.res.writeHead(200, { "content-type": deps.metrics.registry.contentType });
    ctx.res.end(body);
  });
  router.get(
    "/.well-known/jwks.json",
    {
      operationId: "getJwks",
      summary: "The public keys that verify Keyward's tokens (retired ones until their tokens expired)",
      tag: "tokens",
      auth: "public",
      responses: { 200: json(JwksSchema, "The JSON Web Key Set") },
    },
    (ctx) => sendJson(ctx.res, 200, deps.jwks(), { "cache-control": "public, max-age=300" }),
  );
}
