import { mcpServerOfResource } from "../auth/mcp-resource.js";
import type { IntegrityKeys } from "../crypto/integrity-keys.js";
import { hashSecret, randomBase62 } from "../crypto/secret-format.js";
import { errorPage, errorRedirect, type FlowOutcome } from "./authorization-outcomes.js";
import type { AuthorizationStore } from "./authorization-store.js";
import { s256 } from "./code-grant.js";
import { foreignScope } from "./granted-scopes.js";
import type { OAuthClients } from "./oauth-clients.js";
import { redirectUriRegistered } from "./redirect-policy.js";
import type { SignInProvider } from "./sign-in-provider.js";

/** How long an authorization request may wait for sign-in and consent. */
export const REQUEST_TTL_MS = 10 * 60_000;
/** RFC 7636 §4.2: an S256 challenge is 43 base64url characters. */
const CHALLENGE = /^[A-Za-z0-9_-]{43}$/;
const MAX_STATE_CHARS = 1024;
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

export interface SignInSettings {
  issuer: string;
  clientId: string;
  scopes: readonly string[];
}

export interface StartDeps {
  store: AuthorizationStore;
  clients: OAuthClients;
  integrity: IntegrityKeys;
  now: () => number;
  issuer: () => string;
  serverExists: (name: string) => boolean;
  /** Absent: sign-in is not configured, and every valid request is answered temporarily_unavailable. */
  signIn?: { settings: SignInSettings; provider: SignInProvider } | undefined;
  maxPending: number;
}

/** `<issuer>/oauth/callback`: where the provider sends the user back. */
export const callbackUrl = (issuer: string) => `${issuer.replace(/\/+$/, "")}/oauth/callback`;

/**
 * `GET /oauth/authorize` (RFC 6749 §4.1.1, PKCE S256, RFC 8707, RFC 9207). The client and its
 * redirect URI are checked first: when either is wrong the user sees an error page and nothing is
 * sent anywhere. Every other problem goes back to that URI as `error=`. Nothing is stored for a
 * refused request; a valid one is stored (bounded, 10 minutes) and the user is sent to sign in at
 * the provider with our own state, nonce and PKCE. `browser` is the flow cookie's value: the
 * callback must come back in the same browser.
 */
export function createAuthorizationStart(deps: StartDeps) {
  return async function start(query: URLSearchParams, browser: string): Promise<FlowOutcome> {
    const once = (name: string): string | undefined | null => {
      const all = query.getAll(name);
      return all.length > 1 ? null : all[0];
    };
    const clientId = once("client_id");
    if (clientId === null || clientId === undefined || clientId === "") {
      return errorPage(400, "Invalid authorization request", "client_id is missing or given more than once.");
    }
    const client = await deps.clients.get(clientId);
    if (!client) return errorPage(400, "Unknown application", "No application is registered with this client_id.");
    const given = once("redirect_uri");
    if (given === null) return errorPage(400, "Invalid authorization request", "redirect_uri is given more than once.");
    // RFC 6749 §3.1.2.3: optional when exactly one is registered; otherwise it must equal one
    // exactly (a loopback IP literal's port aside, RFC 8252 §7.3: redirect-policy.ts).
    const redirectUri = given ?? (client.redirect_uris.length === 1 ? client.redirect_uris[0] : undefined);
    if (redirectUri === undefined || !redirectUriRegistered(client.redirect_uris, redirectUri)) {
      return errorPage(
        400,
        "Invalid redirect URI",
        "The redirect_uri is missing or is not one this application registered; you were not sent anywhere.",
      );
    }
    const issuer = deps.issuer();
    const state = once("state");
    const fail = (error: Parameters<typeof errorRedirect>[3], description: string) =>
      errorRedirect(redirectUri, issuer, typeof state === "string" ? state : undefined, error, description);
    for (const name of new Set(query.keys())) {
      if (query.getAll(name).length > 1) return fail("invalid_request", `${name} is given more than once`);
    }
    if (state !== undefined && state !== null && state.length > MAX_STATE_CHARS) {
      return fail("invalid_request", `state is longer than ${MAX_STATE_CHARS} characters`);
    }
    if (query.get("response_type") !== "code") {
      return fail("unsupported_response_type", "response_type must be code");
    }
    const challenge = query.get("code_challenge");
    if (query.get("code_challenge_method") !== "S256" || challenge === null || !CHALLENGE.test(challenge)) {
      return fail(
        "invalid_request",
        "PKCE is required: code_challenge (43 characters) with code_challenge_method=S256",
      );
    }
    const resource = query.get("resource");
    if (resource === null) return fail("invalid_target", "resource is required (RFC 8707): the MCP server's URL");
    const server = mcpServerOfResource(issuer, resource);
    if (server === undefined || !deps.serverExists(server)) {
      return fail("invalid_target", "resource is not an MCP server of this authorization server");
    }
    const scope = query.get("scope");
    const requested = scope === null ? [] : scope.split(" ").filter((s) => s !== "");
    if (requested.some((s) => !SCOPE_TOKEN.test(s)))
      return fail("invalid_scope", "scope has characters RFC 6749 does not allow");
    const foreign = foreignScope(requested, server);
    if (foreign !== undefined) return fail("invalid_scope", `scope ${foreign} is not a scope of mcp:${server}`);
    if (!deps.signIn) return fail("temporarily_unavailable", "sign-in is not configured on this server");

    let authorizationEndpoint: string;
    try {
      authorizationEndpoint = (await deps.signIn.provider.endpoints()).authorizationEndpoint;
    } catch {
      return fail("temporarily_unavailable", "the identity provider cannot be reached");
    }
    const providerState = randomBase62(43);
    const nonce = randomBase62(43);
    const verifier = randomBase62(64);
    const now = deps.now();
    const stored = await deps.store.insertRequest(
      {
        state_hash: hashSecret(providerState, deps.integrity),
        browser_hash: hashSecret(browser, deps.integrity),
        client_id: client.id,
        redirect_uri: redirectUri,
        client_state: typeof state === "string" ? state : null,
        code_challenge: challenge,
        resource,
        scope: requested.length > 0 ? [...new Set(requested)].join(" ") : null,
        nonce,
        provider_verifier: verifier,
        user_id: null,
        granted_scope: null,
        consent_hash: null,
        created_at: now,
        expires_at: now + REQUEST_TTL_MS,
      },
      deps.maxPending,
      now,
    );
    if (!stored) return fail("temporarily_unavailable", "too many sign-ins are under way; try again shortly");
    const { settings } = deps.signIn;
    const url = new URL(authorizationEndpoint);
    url.searchParams.set("response_type", "code");
    url.searchParams.set("client_id", settings.clientId);
    url.searchParams.set("redirect_uri", callbackUrl(issuer));
    url.searchParams.set("scope", settings.scopes.join(" "));
    url.searchParams.set("state", providerState);
    url.searchParams.set("nonce", nonce);
    url.searchParams.set("code_challenge", s256(verifier));
    url.searchParams.set("code_challenge_method", "S256");
    return { kind: "redirect", location: url.toString() };
  };
}
