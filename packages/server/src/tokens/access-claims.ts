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
