import { timingSafeEqual } from "node:crypto";
import type { AuditSink } from "../audit/audit-sink.js";
import type { IntegrityKeys } from "../crypto/integrity-keys.js";
import { hashSecret, randomBase62 } from "../crypto/secret-format.js";
import { errorPage, errorRedirect, type FlowOutcome, redirectWith } from "./authorization-outcomes.js";
import type { AuthorizationStore } from "./authorization-store.js";
import { consentCsrf } from "./sign-in-callback.js";

/** RFC 6749 §4.1.2 recommends at most 10 minutes; a client redeems its code at once. */
export const CODE_TTL_MS = 60_000;
const OPAQUE = /^[0-9A-Za-z]{43}$/;

export interface ConsentDeps {
  store: AuthorizationStore;
  integrity: IntegrityKeys;
  audit: AuditSink;
  now: () => number;
  issuer: () => string;
}

/**
 * `POST /oauth/authorize/consent`: the user's answer. The route has already checked that the
 * browser says it comes from our own page (Origin, Sec-Fetch-Site); here the CSRF token must be
 * the MAC of the consent id and this browser's flow cookie, checked before anything is spent (a
 * forged answer does not end the user's real one). The request is then taken once: Approve issues
 * a code (single use, 60 s, stored by keyed hash, bound to client, redirect URI, PKCE challenge,
 * resource, scopes and user); Deny sends `access_denied`. Both audited with the user as actor.
 */
export function createConsentDecision(deps: ConsentDeps) {
  return async function decide(
    form: URLSearchParams,
    browser: string | undefined,
    meta: { ip: string; requestId: string },
  ): Promise<FlowOutcome> {
    const consent = form.get("consent") ?? "";
    const csrf = form.get("csrf") ?? "";
    const decision = form.get("decision");
    const forged = errorPage(403, "Request refused", "This answer did not come from the consent page we showed you.");
    if (!OPAQUE.test(consent) || browser === undefined || !OPAQUE.test(browser)) return forged;
    const expected = Buffer.from(consentCsrf(deps.integrity, consent, browser));
    const given = Buffer.from(csrf);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return forged;
    if (decision !== "approve" && decision !== "deny") {
      return errorPage(400, "Invalid answer", "Choose Approve or Deny on the consent page.");
    }
    const row = await deps.store.takeByConsent(hashSecret(consent, deps.integrity), deps.now());
    if (!row || row.user_id === null || row.granted_scope === null) {
      return errorPage(
        400,
        "Already answered",
        "This request was already answered or has expired. Start again from your application.",
      );
    }
    const issuer = deps.issuer();
    const event = {
      actor: row.user_id,
      action: "oauth.authorize",
      target: row.client_id,
      ip: meta.ip,
      requestId: meta.requestId,
      details: { resource: row.resource, scope: row.granted_scope, redirect_uri: row.redirect_uri },
    };
    if (decision === "deny") {
      await deps.audit.record({ ...event, outcome: "denied", code: "access_denied" });
      return errorRedirect(row.redirect_uri, issuer, row.client_state, "access_denied", "the user denied the request");
    }
    const code = randomBase62(43);
    const now = deps.now();
    await deps.store.insertCode({
      hash: hashSecret(code, deps.integrity),
      client_id: row.client_id,
      redirect_uri: row.redirect_uri,
      code_challenge: row.code_challenge,
      resource: row.resource,
      scope: row.granted_scope,
      user_id: row.user_id,
      created_at: now,
      expires_at: now + CODE_TTL_MS,
      used_at: null,
      jti: null,
      jti_expires_at: null,
      family: null,
    });
    await deps.audit.record({ ...event, outcome: "success" });
    return redirectWith(row.redirect_uri, { code, state: row.client_state, iss: issuer });
  };
}
