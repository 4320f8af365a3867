/**
 * How `trusted_issuers` divide user ids between identity providers (SPEC §8). An issuer's users
 * are `user:<user_prefix><claim>`, so `alice` at two providers is two users. The prefix uses the
 * user-id characters (users/user-rules.ts forbids `:` so `user:<id>` splits one way only): `okta.`
 * gives `user:okta.alice`.
 *
 * Ids stay apart only if no id can be read two ways: no two issuers may share a prefix, and no
 * prefix may begin another (`a.` + `b.c` and `a.b.` + `c` are both `a.b.c`). Entries with the same
 * `issuer` may share one: OIDC names a user by (iss, sub), so they vouch for the same people.
 *
 * An entry without a prefix puts its users among the ids of admin-made `user:<id>` keys, where any
 * key for `user:alice` is that provider's alice. One issuer may do so on purpose
 * (`share_user_ids_with_keys: true`). A lone issuer with neither keeps that old mapping so an
 * existing deployment's users keep their credentials, with a warning at start
 * (`unprefixedWarnings`); with two or more issuers the prefix is required.
 */

/** The part of an entry this rule reads (config.ts validates the rest). */
export interface IssuerNamespace {
  issuer: string;
  user_prefix?: string | undefined;
  share_user_ids_with_keys?: boolean | undefined;
}

/** Bounded well under the 128-character user id so a prefix leaves room for the claim. */
export const USER_PREFIX_RULE = /^[A-Za-z0-9._@+-]{1,64}$/;
export const USER_PREFIX_HINT = "must be 1-64 characters of A-Z a-z 0-9 . _ @ + -";

/** The first way the entries fail to keep users apart, as one line naming the setting; undefined when none. */
export function namespaceProblem(entries: readonly IssuerNamespace[]): string | undefined {
  const issuers = new Set(entries.map((e) => e.issuer));
  const sharing = new Set<string>();
  for (const [i, e] of entries.entries()) {
    if (e.share_user_ids_with_keys === true) {
      if (e.user_prefix !== undefined) {
        return `trusted_issuers[${i}]: share_user_ids_with_keys and user_prefix exclude each other`;
      }
      sharing.add(e.issuer);
      if (sharing.size > 1) {
        return `trusted_issuers[${i}].share_user_ids_with_keys: at most one issuer may share user ids with admin-made keys`;
      }
    } else if (e.user_prefix === undefined && issuers.size > 1) {
      return `trusted_issuers[${i}].user_prefix is required when more than one issuer is configured (or share_user_ids_with_keys: true on one of them)`;
    }
  }
  for (const [j, b] of entries.entries()) {
    for (const [i, a] of entries.slice(0, j).entries()) {
      const p = a.user_prefix;
      const q = b.user_prefix;
      if (p === undefined || q === undefined) continue;
      if (p === q && a.issuer === b.issuer) continue;
      if (p.startsWith(q) || q.startsWith(p)) {
        return `trusted_issuers[${j}].user_prefix ${JSON.stringify(q)} clashes with trusted_issuers[${i}]'s ${JSON.stringify(p)}: each issuer needs its own, and none may begin another`;
      }
    }
  }
  return undefined;
}

/** One warning per entry that keeps the old unprefixed ids without having opted in. */
export function unprefixedWarnings(entries: readonly IssuerNamespace[]): string[] {
  return entries.flatMap((e, i) =>
    e.user_prefix === undefined && e.share_user_ids_with_keys !== true
      ? [
          `trusted_issuers[${i}].user_prefix is not set: users of ${e.issuer} are user:<claim>, the same ids as admin-made user keys; set user_prefix (moving credentials, see docs/operations.md) or share_user_ids_with_keys: true`,
        ]
      : [],
  );
}
