// Keyward's access tokens as auth/ checks them: their claims and the verified form. The tokens/
// domain mints and verifies them (tokens/access-tokens.ts); auth/ and the gateway only read them.

/** The claims of Keyward's access tokens (RFC 9068, SPEC §2). */
export interface AccessClaims {
  iss: string;
  sub: string;
  aud: string | string[];
  exp: number;
  iat: number;
  jti: string;
  client_id: string;
  scope: string;
  act?: ActLink;
  [claim: string]: unknown;
}

/** RFC 8693 `act`: the actor, and who it acted for in turn (nested for longer chains). */
export interface ActLink {
  sub: string;
  client_id?: string;
  act?: ActLink;
}

/** A verified token as the gateway keeps it: parsed once, then read from memory. */
export interface CheckedToken {
  claims: AccessClaims;
  scopes: readonly string[];
  scopeSet: ReadonlySet<string>;
  audiences: readonly string[];
  /**
   * Every key the token's authority rests on: its client and each actor in the chain. A client
   * that is a trusted issuer (`idp:…`, issuer-client.ts) is no key and is left out.
   */
  keyIds: readonly string[];
  expMs: number;
}

export type TokenCheckResult =
  | { ok: true; token: CheckedToken }
  | { ok: false; code: "invalid_token" | "token_expired"; message: string };
