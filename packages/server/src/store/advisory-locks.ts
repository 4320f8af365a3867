/**
 * PostgreSQL advisory lock ids, all in one place so two uses never share one by accident (a
 * shared id serializes unrelated work across replicas, or worse, lets one hold off the other).
 */

/** Schema migrations (store/migrate.ts): one replica migrates, the others wait. */
export const MIGRATIONS_LOCK = 7201001;

/**
 * Every replica appending to the audit chain takes this first; so do the integrity root's
 * creation (crypto/integrity-root.ts) and the change log's writes (cluster/changes-store.ts),
 * which must be ordered with the chain.
 */
export const AUDIT_APPEND_LOCK = 7201002;

/** Marking legacy key and admin-token hashes on upgrade (crypto/legacy-hashes.ts). */
export const LEGACY_MARK_LOCK = 7201003;
