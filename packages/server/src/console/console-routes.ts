import { KeywardError } from "../errors.js";
import { checkForwardedPath, PATH_REFUSAL_MESSAGES } from "../http/path-safety.js";
import type { RequestContext, Router } from "../http/router.js";
import { contentType, readConsoleFile } from "./console-files.js";

/**
 * Sent with every console response, errors included (SPEC §11). The build has no inline script or
 * style, so nothing needs 'unsafe-inline'; the app only talks to this origin's /admin/v1.
 */
export const CONSOLE_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

/** Vite names these by content hash: a new build gets new names, so an old name never changes. */
const HASHED_PREFIX = "assets/";
const IMMUTABLE = "public, max-age=31536000, immutable";

const NOT_BUILT_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Keyward console not built</title></head>
<body><h1>The Keyward console is not built</h1>
<p>Run <code>npm run build</code> at the repository's root (or set <code>KEYWARD_CONSOLE_DIR</code>) and reload.</p>
</body></html>
`;

/**
 * `GET /console` → `/console/`; `/console/<file>` serves the build's file, `/console/assets/<file>`
 * only that (404 when absent: a script tag must not get HTML), and any other path the app's
 * index.html so that its router can show the page (a reload on `/console/keys`). Static files
 * hold no secret and need no session; the app's API calls do.
 */
export function registerConsoleRoutes(router: Router, deps: { dir: string }): void {
  const serve = async (ctx: RequestContext) => {
    for (const [name, value] of Object.entries(CONSOLE_SECURITY_HEADERS)) ctx.res.setHeader(name, value);
    if (ctx.method !== "GET" && ctx.method !== "HEAD") {
      throw new KeywardError("method_not_allowed", `method ${ctx.method} is not allowed here`, {
        allow: "GET, HEAD",
      });
    }
    if (ctx.path === "/console") {
      const q = ctx.req.url?.indexOf("?") ?? -1;
      const search = q === -1 ? "" : (ctx.req.url ?? "").slice(q);
      ctx.res.writeHead(302, { location: `/console/${search}`, "content-length": 0 });
      ctx.res.end();
      return;
    }
    const rest = ctx.path.slice("/console".length);
    // The one path check (http/path-safety.ts): no dot or empty segment, backslash or control
    // character at any decoding layer, so the joined file stays below the build folder.
    const check = checkForwardedPath(rest);
    if (!check.ok) throw new KeywardError("invalid_request", PATH_REFUSAL_MESSAGES[check.reason]);
    const relative = decodeURIComponent(rest).slice(1);
    const file = relative === "" || relative.endsWith("/") ? undefined : relative;
    const body = file === undefined ? undefined : await readConsoleFile(deps.dir, file);
    if (file !== undefined && body !== undefined) {
      send(ctx, 200, contentType(file), file.startsWith(HASHED_PREFIX) ? IMMUTABLE : "no-cache", body);
      return;
    }
    if (file?.startsWith(HASHED_PREFIX)) throw new KeywardError("not_found", "no such console asset");
    const index = await readConsoleFile(deps.dir, "index.html");
    if (index === undefined) {
      send(ctx, 404, "text/html; charset=utf-8", "no-cache", Buffer.from(NOT_BUILT_PAGE));
      return;
    }
    send(ctx, 200, "text/html; charset=utf-8", "no-cache", index);
  };
  router.on(["GET", "POST", "PUT", "PATCH", "DELETE"], "/console/*", serve);
}

function send(ctx: RequestContext, status: number, type: string, cacheControl: string, body: Buffer): void {
  ctx.res.writeHead(status, { "content-type": type, "content-length": body.length, "cache-control": cacheControl });
  ctx.res.end(body);
}
