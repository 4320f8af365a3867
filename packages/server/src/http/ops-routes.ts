import { timingSafeEqual } from "node:crypto";
import { KeywardError } from "../errors.js";
import type { Metrics } from "../ops/metrics.js";
import type { Db } from "../store/db.js";
import { sendJson } from "./respond.js";
import type { Router } from "./router.js";

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Health, readiness and Prometheus metrics: the endpoints operators and orchestrators probe. */
export function registerOpsRoutes(
  router: Router,
  deps: { db: Db; metrics: Metrics; metricsToken: string | undefined },
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
}
