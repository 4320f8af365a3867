import { SLUG } from "@keyward/sdk/names";

/**
 * The protected resource an MCP server is (RFC 9728, SPEC §12): `<issuer>/mcp/<server>`, the
 * `resource` a client asks a token for (RFC 8707) and the `aud` of the token it gets. One
 * spelling, here, for the authorization server that binds tokens to it and the MCP endpoint that
 * accepts them.
 */
export function mcpResource(issuer: string, server: string): string {
  // The MCP endpoint builds this for every request a resource-bound token makes: no regex unless
  // the issuer ends in a slash.
  const base = issuer.endsWith("/") ? issuer.replace(/\/+$/, "") : issuer;
  return `${base}/mcp/${server}`;
}

/** The MCP server a `resource` names under this issuer, or undefined (another origin, path or a bad name). */
export function mcpServerOfResource(issuer: string, resource: string): string | undefined {
  const base = `${issuer.replace(/\/+$/, "")}/mcp/`;
  if (!resource.startsWith(base)) return undefined;
  const server = resource.slice(base.length);
  return SLUG.test(server) ? server : undefined;
}

/**
 * Where a resource's metadata lives (SPEC §12): `<issuer>/.well-known/oauth-protected-resource/mcp/<server>`,
 * which is RFC 9728 §3.1's place (the well-known segment before the resource's path) when the
 * issuer is an origin, as it is unless Keyward is published under a path.
 */
export function mcpResourceMetadataUrl(issuer: string, server: string): string {
  return `${issuer.replace(/\/+$/, "")}/.well-known/oauth-protected-resource/mcp/${server}`;
}
