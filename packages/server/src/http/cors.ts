import type { RequestContext, Router } from "./router.js";

/**
 * CORS for endpoints any web page may call: public documents, and endpoints whose credential is
 * in the request itself (a bearer token, a client secret, a code with its PKCE verifier), never a
 * cookie. A page without that credential gets nothing it could not get with curl. Browser-based
 * MCP clients (the MCP Inspector) run the OAuth flow from their own page and need these.
 * Never for cookie-authenticated endpoints (the console's /admin/v1, the consent form).
 */
export function allowAnyOrigin(ctx: RequestContext): void {
  ctx.res.setHeader("access-control-allow-origin", "*");
  ctx.res.setHeader("access-control-expose-headers", "www-authenticate");
}

/** Answers a browser's preflight (`OPTIONS`) for `path`: these methods and request headers, cached 10 minutes. */
export function registerPreflight(router: Router, path: string, methods: string, headers: string): void {
  router.on(["OPTIONS"], path, (ctx) => {
    ctx.req.resume();
    ctx.res
      .writeHead(204, {
        "access-control-allow-origin": "*",
        "access-control-allow-methods": methods,
        "access-control-allow-headers": headers,
        "access-control-max-age": "600",
        "content-length": 0,
      })
      .end();
  });
}
