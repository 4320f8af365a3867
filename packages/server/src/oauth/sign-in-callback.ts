import { mcpServerOfResource } from "../auth/mcp-resource.js";
import type { IntegrityKeys } from "../crypto/integrity-keys.js";
import { hashSecret, randomBase62 } from "../crypto/secret-format.js";
import { OAuthError } from "../tokens/oauth-errors.js";
import type { ExternalSubject } from "../tokens/trusted-issuers.js";
import { errorPage, errorRedirect, type FlowOutcome } from "./authorization-outcomes.js";
import { callbackUrl, type SignInSettings } from "./authorization-start.js";
import type { AuthorizationStore } from "./authorization-store.js";
import { grantedScopes, scopesOnServer } from "./granted-scopes.js";
import type { OAuthClients } from "./oauth-clients.js";
import { ProviderError, type SignInProvider } from "./sign-in-provider.js";

export interface CallbackDeps {
  store: AuthorizationStore;
  clients: OAuthClients;
  integrity: IntegrityKeys;
  now: () => number;
  issuer: () => string;
  signIn?: { settings: SignInSettings; provider: SignInProvider } | undefined;
  /** The one verification of external JWTs (tokens/trusted-issuers.ts), narrowed to the sign-in's issuer and nonce. */
  verifyIdToken: (
    token: string,
    expect: { issuer: string; nonce: string; audience: string },
  ) => Promise<ExternalSubject>;
  /**
   * Told why a sign-in could not be verified, for the operator (a misconfigured provider shows
   * here, not to the user). Only our own refusal texts reach it: they carry no token or code.
   */
  warn?: (reason: string) => void;
}

/** The CSRF token of a consent form: a MAC of the consent id and the browser's flow cookie. */
export function consentCsrf(integrity: IntegrityKeys, consent: string, browser: string): string {
  return Buffer.from(integrity.mac("oauthConsent", `${consent}.${browser}`), "hex").toString("base64url");
}

/**
 * `GET /oauth/callback`: the provider sends the user back with our `state` and a code. The state
 * names the stored request, once (a replayed callback finds nothing), and only in the browser that
 * started it (the flow cookie). The code is exchanged at the provider, the ID token verified by
 * the trusted-issuers module with our nonce, and the user shown the consent page; the request
 * waits for the answer under a new opaque id.
 */
export function createSignInCallback(deps: CallbackDeps) {
  return async function callback(query: URLSearchParams, browser: string | undefined): Promise<FlowOutcome> {
    const state = query.get("state");
    const row =
      state === null || state.length > 200
        ? undefined
        : await deps.store.takeByState(hashSecret(state, deps.integrity), deps.now());
    if (!row) {
      return errorPage(
        400,
        "Sign-in expired",
        "This sign-in is unknown, was already completed, or has expired. Start again from your application.",
      );
    }
    if (browser === undefined || hashSecret(browser, deps.integrity) !== row.browser_hash) {
      return errorPage(
        400,
        "Sign-in from another browser",
        "This sign-in was started in another browser. Start again from your application.",
      );
    }
    const issuer = deps.issuer();
    const fail = (error: Parameters<typeof errorRedirect>[3], description: string) =>
      errorRedirect(row.redirect_uri, issuer, row.client_state, error, description);
    const providerError = query.get("error");
    if (providerError !== null) {
      return providerError === "access_denied"
        ? fail("access_denied", "the user did not sign in")
        : fail("server_error", "the identity provider refused the sign-in");
    }
    const code = query.get("code");
    if (!deps.signIn || code === null || code === "" || code.length > 4096) {
      return fail("server_error", "the identity provider answered without a code");
    }
    let subject: ExternalSubject;
    try {
      const idToken = await deps.signIn.provider.exchange(code, callbackUrl(issuer), row.provider_verifier);
      subject = await deps.verifyIdToken(idToken, {
        issuer: deps.signIn.settings.issuer,
        nonce: row.nonce,
        audience: deps.signIn.settings.clientId,
      });
    } catch (err) {
      // A provider failure or an ID token we cannot trust. Only our own refusal texts are logged
      // (ProviderError, OAuthError: written without the token or code); anything else by its kind.
      const known = err instanceof ProviderError || err instanceof OAuthError;
      deps.warn?.(known ? err.message : "unexpected failure while verifying the sign-in");
      return fail("access_denied", "the sign-in could not be verified");
    }
    const server = mcpServerOfResource(issuer, row.resource);
    const client = await deps.clients.get(row.client_id);
    if (server === undefined || !client) return fail("server_error", "the request's client or resource is gone");
    const allowed = scopesOnServer(subject.scopes, server);
    const granted = grantedScopes(row.scope?.split(" "), allowed);
    if (granted === undefined) {
      return allowed.length === 0
        ? fail("access_denied", `this user may not use mcp:${server}`)
        : fail("invalid_scope", `this user may not have the requested scopes of mcp:${server}`);
    }
    const consent = randomBase62(43);
    const user = `user:${subject.userId}`;
    await deps.store.insertConsent({
      ...row,
      user_id: user,
      granted_scope: granted.join(" "),
      consent_hash: hashSecret(consent, deps.integrity),
    });
    return {
      kind: "consent",
      server,
      clientName: client.name,
      clientId: client.id,
      redirectUri: row.redirect_uri,
      scopes: granted,
      user,
      consent,
      csrf: consentCsrf(deps.integrity, consent, browser),
    };
  };
}
