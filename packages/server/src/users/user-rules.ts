import { USER_ID } from "@keyward/sdk/names";
import { invalidRequest } from "../errors.js";

/**
 * What a user id may be. Emails fit; `:` and `/` never do, so `user:<id>` splits one way only and
 * an id is always one URL path segment and one unambiguous part of a sealed value's aad. Never
 * only dots: a URL resolves `.` and `..` away, so `/admin/v1/users/../credentials/x` reaches
 * `/admin/v1/credentials/x` (a client would overwrite the shared credential instead).
 */
export { USER_ID };
export const USER_ID_HINT = "must be 1-128 characters of A-Z a-z 0-9 . _ @ + - (not only dots)";

export const USER_PREFIX = "user:";

/** The same rule as a key's `user:<id>` owner (keys/keys-routes.ts), so every user key can have credentials. */
export function isUserId(id: string): boolean {
  return USER_ID.test(id);
}

/** The id of a `user:<id>` principal, or undefined when it is not a (valid) user principal. */
export function userOfPrincipal(principal: string): string | undefined {
  if (!principal.startsWith(USER_PREFIX)) return undefined;
  const id = principal.slice(USER_PREFIX.length);
  return isUserId(id) ? id : undefined;
}

/** A user id from an admin path: the bare id, or `user:<id>` (the form keys' owners use). */
export function parseUserParam(raw: string): string {
  const id = raw.startsWith(USER_PREFIX) ? raw.slice(USER_PREFIX.length) : raw;
  if (!isUserId(id)) throw invalidRequest(`user: ${USER_ID_HINT}`);
  return id;
}
