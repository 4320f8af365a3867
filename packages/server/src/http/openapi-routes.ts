import { readFileSync } from "node:fs";
import { buildOpenApiDocument } from "../openapi/document.js";
import type { DocumentedRoute } from "../openapi/operation.js";
import { sendJson } from "./respond.js";
import type { Router } from "./router.js";

/** The server package's version, the document's `info.version` (src/ and dist/ sit at the same depth). */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

/**
 * `GET /openapi.json` (SPEC §11), public like /healthz: it describes the API and holds no secret.
 * Built on first request from every route registered with a description, so it is complete only
 * once all routes are registered, and a route cannot be mounted with a description that differs
 * from what it validates. `describeAccess` adds what a route's authorization answers besides the
 * route's own responses (the admin roles' 403, admin/admin-module.ts).
 */
export function registerOpenApiRoute(
  router: Router,
  describeAccess: (route: DocumentedRoute) => DocumentedRoute = (r) => r,
): void {
  let body: unknown;
  router.get(
    "/openapi.json",
    {
      operationId: "getOpenApiDocument",
      summary: "This document",
      tag: "meta",
      auth: "public",
      responses: { 200: { description: "The OpenAPI 3.1 document", contentType: "application/json" } },
    },
    (ctx) => {
      body ??= buildOpenApiDocument(router.documented().map(describeAccess), { version: packageVersion() });
      sendJson(ctx.res, 200, body, { "cache-control": "public, max-age=300" });
    },
  );
}
