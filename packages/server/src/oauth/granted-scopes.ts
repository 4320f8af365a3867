import { covers } from "../auth/scopes.js";

/**
 * What a signed-in user may be granted on one MCP server: those of the sign-in issuer's
 * configured scopes (`trusted_issuers[].scopes`) that reach that server, narrowed to it —
 * `mcp:*` and `mcp:<server>` become `mcp:<server>`, `mcp:<server>:<tool>` stays. A token bound to
 * one server never carries scopes for another.
 */
export function scopesOnServer(held: readonly string[], server: string): string[] {
  const whole = `mcp:${server}`;
  if (held.includes("mcp:*") || held.includes(whole)) return [whole];
  return [...new Set(held.filter((s) => s.startsWith(`${whole}:`) && s.length > whole.length + 1))];
}

/** A requested scope that is not `mcp:<server>` or `mcp:<server>:<tool>` of this server, if any. */
export function foreignScope(requested: readonly string[], server: string): string | undefined {
  const whole = `mcp:${server}`;
  return requested.find((s) => s !== whole && !(s.startsWith(`${whole}:`) && s.length > whole.length + 1));
}

/**
 * The scopes to grant: the request's (each within what the user may have), or all the user may
 * have when the request named none. Undefined when the request asks beyond it (invalid_scope).
 */
export function grantedScopes(
  requested: readonly string[] | undefined,
  allowed: readonly string[],
): string[] | undefined {
  if (requested === undefined || requested.length === 0) return allowed.length > 0 ? [...allowed] : undefined;
  return requested.every((s) => covers(allowed, s)) ? [...requested] : undefined;
}
