import { createHash } from "node:crypto";
import { KeywardError } from "../errors.js";
import { parseWith, readBody } from "../http/body.js";
import { sendJson } from "../http/respond.js";
import type { RequestContext, Router } from "../http/router.js";
import { errors, json } from "../openapi/operation.js";
import { type ReporterKeys, verifyReport } from "./leak-signature.js";
import { LeakReportSchema, LeakVerdictsSchema, MAX_REPORT_BYTES } from "./leaks-schemas.js";
import type { LeaksService } from "./leaks-service.js";

const header = (ctx: RequestContext, name: string): string | undefined => {
  const v = ctx.req.headers[name];
  return Array.isArray(v) ? undefined : v;
};

/**
 * `POST /v1/leaks`: secret-scanning reports. Authenticated by the reporter's signature over the
 * raw body, checked before the body is parsed; a report without leaks configured is a 404, as if
 * the endpoint did not exist.
 */
export function registerLeakRoutes(
  router: Router,
  deps: { leaks: LeaksService | undefined; keys: ReporterKeys },
): void {
  router.post(
    "/v1/leaks",
    {
      operationId: "reportLeakedKeys",
      summary:
        "Report leaked keys (secret-scanning partner format, signed); live keys are revoked or frozen (404 when leaks are not configured)",
      tag: "leaks",
      auth: "public",
      body: LeakReportSchema,
      responses: {
        200: json(LeakVerdictsSchema, "One verdict per reported token (its SHA-256, never the token)"),
        ...errors(400, 401, 413),
      },
    },
    async (ctx) => {
      const { leaks } = deps;
      if (!leaks) throw new KeywardError("not_found", "no such endpoint");
      const body = await readBody(ctx.req, MAX_REPORT_BYTES);
      // Syntax first (bounded, and no different from any endpoint's), then the signature, then
      // the fields: nothing a report says is looked at before its signature verified.
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString("utf8"));
      } catch {
        throw new KeywardError("invalid_request", "request body is not valid JSON");
      }
      const keyId = header(ctx, "github-public-key-identifier");
      if (!verifyReport(deps.keys, keyId, header(ctx, "github-public-key-signature"), body)) {
        throw new KeywardError("unauthorized", "the report's signature does not verify with a configured key");
      }
      const entries = parseWith(LeakReportSchema, parsed, "body");
      const digest = createHash("sha256").update(body).digest("hex");
      sendJson(ctx.res, 200, await leaks.report(keyId as string, digest, entries));
    },
  );
}
