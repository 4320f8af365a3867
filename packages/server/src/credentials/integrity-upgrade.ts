import type { IntegrityKeys } from "../crypto/integrity-keys.js";
import type { Logger } from "../ops/logger.js";
import { type Db, queryOne } from "../store/db.js";
import { grantMac, pointerMac } from "./credential-integrity.js";
import type { CredentialRow } from "./credentials-store.js";
import type { GrantRow } from "./grants-store.js";

/**
 * Credentials and grants written before migration 8 have no MAC; MACs need the integrity root, so
 * SQL cannot make them and the migration only adds the columns. This runs at start-up, before
 * anything is served, and MACs every row that exists at the upgrade, once per database
 * (the same design as crypto/legacy-hashes.ts):
 * - it records that it ran in a `meta` row holding Keyward's MAC, and never runs again;
 * - it refuses to run while MACed rows exist without that record: someone deleted the record to
 *   have rows of their own making MACed. Then nothing is MACed, and rows without MAC stay refused.
 * Rows an insider added before the upgrade are MACed with the rest: the upgrade trusts the
 * database as it is at that moment, as the previous version did (docs/operations.md).
 */
const DONE_KEY = "credential_macs_v1";

export async function macExistingCredentialRows(deps: { db: Db; keys: IntegrityKeys; logger?: Logger }): Promise<void> {
  const { db, keys } = deps;
  const doneMac = () => keys.mac("credentialPointer", `done:${DONE_KEY}`);
  const done = await queryOne<{ value: string }>(db, "SELECT value FROM meta WHERE key = $1", [DONE_KEY]);
  if (done) {
    if (!keys.verify("credentialPointer", `done:${DONE_KEY}`, done.value)) {
      deps.logger?.error("credential MAC upgrade marker is not Keyward's: no row is MACed");
    }
    return;
  }
  await db.transaction(async (tx) => {
    // The credential clock's row lock: no credential or grant write runs while rows are MACed.
    await tx.exec("UPDATE credential_clock SET seq = seq WHERE id = 1");
    if (await queryOne(tx, "SELECT key FROM meta WHERE key = $1", [DONE_KEY])) return; // another replica
    const maced =
      (await queryOne(tx, "SELECT name FROM credentials WHERE pointer_mac IS NOT NULL LIMIT 1")) ??
      (await queryOne(tx, "SELECT agent FROM agent_grants WHERE mac IS NOT NULL LIMIT 1"));
    if (maced) {
      deps.logger?.error("credential MAC upgrade marker missing while MACed rows exist: no row is MACed");
      return;
    }
    const credentials = await tx.query<CredentialRow>(
      "SELECT name, type, current_version, latest_version, egress, provider, config_seq, deleted_at FROM credentials",
    );
    for (const c of credentials) {
      const mac = pointerMac(keys, {
        ...c,
        current_version: c.current_version === null ? null : Number(c.current_version),
        latest_version: Number(c.latest_version),
        config_seq: Number(c.config_seq),
      });
      await tx.exec("UPDATE credentials SET pointer_mac = $1 WHERE name = $2", [mac, c.name]);
    }
    const grants = await tx.query<GrantRow>("SELECT agent, kind, name, mode FROM agent_grants WHERE mode <> 'none'");
    for (const g of grants) {
      await tx.exec("UPDATE agent_grants SET mac = $1 WHERE agent = $2 AND kind = $3 AND name = $4", [
        grantMac(keys, g),
        g.agent,
        g.kind,
        g.name,
      ]);
    }
    await tx.exec("INSERT INTO meta (key, value) VALUES ($1, $2)", [DONE_KEY, doneMac()]);
    if (credentials.length + grants.length > 0) {
      deps.logger?.warn(
        { credentials: credentials.length, grants: grants.length },
        "credentials and grants stored before integrity MACs: MACed as they are now",
      );
    }
  });
}
