import { mcpResource } from "./mcp-resource.js";

/**
 * Where a credential is presented. A token is accepted only where its audience is:
 *
 * - `keyward`: Keyward's own endpoints (credentials, events, egress, tools, audit events, self
 *   service, MCP, the token endpoints' clients). Only a token whose `aud` is the issuer.
 * - `gateway`: `/agents/{agent}/…` and forward-auth for that agent. A token for the issuer (its
 *   `agent:` scopes then decide) or for that very agent (SPEC §8).
 * - `held_by`: a token handed to `agent` and presented by that agent on its holder's behalf: the
 *   `user_token` at `/v1/tools/credentials`, and a `subject_token` exchanged with that agent as
 *   actor. Only a token whose `aud` is that agent.
 * - `mcp`: `/mcp/{server}` (SPEC §12). A token for the issuer (a user's Keyward token: its `mcp:`
 *   scopes then decide) or for that very server's resource, `<issuer>/mcp/<server>` (RFC 8707: an
 *   MCP client's token is bound to the server it was asked for). A token bound to server A is
 *   refused at server B, and, its `aud` not being the issuer, at every other place.
 *
 * The JWT the gateway forwards to agent B names B as audience: B can use it at the gateway of B
 * only, and at Keyward only as `held_by` B. It never acts as its subject at Keyward's own
 * endpoints, so B cannot read its caller's credentials with it.
 */
export type Place =
  | { readonly kind: "keyward" }
  | { readonly kind: "gateway"; readonly agent: string }
  | { readonly kind: "held_by"; readonly agent: string }
  | { readonly kind: "mcp"; readonly server: string };

export const KEYWARD: Place = { kind: "keyward" };

export function audienceAccepted(audiences: readonly string[], place: Place, issuer: string): boolean {
  switch (place.kind) {
    case "keyward":
      return audiences.includes(issuer);
    case "gateway":
      return audiences.includes(place.agent) || audiences.includes(issuer);
    case "held_by":
      return audiences.includes(place.agent);
    case "mcp":
      return audiences.includes(issuer) || audiences.includes(mcpResource(issuer, place.server));
  }
}

export function audienceRefusal(place: Place): string {
  switch (place.kind) {
    case "keyward":
      return "the access token is not meant for Keyward: it was issued to an agent";
    case "gateway":
      return "the access token is not meant for this agent";
    case "held_by":
      return `the access token was not issued to agent ${place.agent}`;
    case "mcp":
      // The server name is not echoed: the route has not yet checked that it is a name at all.
      return "the access token is not meant for this MCP server";
  }
}
