import { SLUG } from "@keyward/sdk/names";
import { z } from "zod";
import { mcpResource } from "../auth/mcp-resource.js";
import { KeywardError } from "../errors.js";
import { allowAnyOrigin, registerPreflight } from "../http/cors.js";
import { sendJson } from "../http/respond.js";
import type { Router } from "../http/router.js";
import { errors, json } from "../openapi/operation.js";

export const ProtectedResourceMetadataSchema = z.object({
  resource: z.string(),
  authorization_servers: z.array(z.string()),
  bearer_methods_supported: z.array(z.string()),
  resource_name: z.string(),
});

/**
 * RFC 9728 Protected Resource Metadata of one MCP server (SPEC §12).
 *
 * No `scopes_supported` (RECOMMENDED, not required): MCP clients ask for every scope listed there
 * (the MCP SDK's scope selection, SEP-835), and the only one we could list is `mcp:<server>` (the
 * per-tool scopes need the upstream's tool list, and an anonymous request must not start an
 * upstream). A user whose trusted issuer grants some tools only would then be refused
 * `invalid_scope`. Without it the client asks for no scope and the authorization server grants
 * what the user may have on this server (oauth/granted-scopes.ts): `mcp:<server>` or its tools.
 */
export function protectedResourceMetadata(
  issuer: string,
  server: string,
): z.infer<typeof ProtectedResourceMetadataSchema> {
  return {
    resource: mcpResource(issuer, server),
    authorization_servers: [issuer],
    bearer_methods_supported: ["header"],
    resource_name: `Keyward MCP server ${server}`,
  };
}

/**
 * `GET /.well-known/oauth-protected-resource/mcp/{server}`: where the 401 of `/mcp/{server}`
 * points (mcp-routes.ts). Public like the other well-known documents, and readable from a
 * browser: the MCP Inspector runs its OAuth discovery in the page.
 *
 * There is no document at the root `/.well-known/oauth-protected-resource` (404): its resource
 * would be Keyward itself, and a client that fell back to it would ask for a token for the whole
 * of Keyward instead of one bound to a server. Clients find the per-server document from the
 * challenge's `resource_metadata`, or by RFC 9728 §3.1's path insertion, which is this path.
 */
export function registerMcpMetadataRoutes(
  router: Router,
  deps: { issuer: () => string; has: (server: string) => boolean },
): void {
  router.get(
    "/.well-known/oauth-protected-resource/mcp/:server",
    {
      operationId: "getMcpProtectedResourceMetadata",
      summary: "RFC 9728 protected resource metadata of an MCP server (/mcp/{server})",
      tag: "mcp",
      auth: "public",
      params: { server: "The MCP server's name, as configured under mcp.servers" },
      responses: { 200: json(ProtectedResourceMetadataSchema, "The metadata"), ...errors(404) },
    },
    (ctx) => {
      allowAnyOrigin(ctx);
      const server = ctx.params.server ?? "";
      // The name is not echoed: an unknown one may be anything a caller typed.
      if (!SLUG.test(server) || !deps.has(server)) throw new KeywardError("not_found", "no such MCP server");
      sendJson(ctx.res, 200, protectedResourceMetadata(deps.issuer(), server), {
        "cache-control": "public, max-age=300",
      });
    },
  );
  // The MCP SDK's discovery sends MCP-Protocol-Version, which makes a browser ask first.
  registerPreflight(router, "/.well-known/oauth-protected-resource/mcp/:server", "GET", "mcp-protocol-version");
}
