import type { Actor } from "../admin/admin-context.js";
import { changeEvent } from "../admin/audited-change.js";
import { invalidRequest, notFound } from "../errors.js";
import {
  type CredentialCore,
  type CredentialMeta,
  type CredentialsServiceDeps,
  openSealed,
  PROVIDER_ACTOR,
} from "./credential-core.js";
import { checkValue } from "./credential-rules.js";
import { valueAad } from "./credentials-store.js";

/** New versions that are not an admin's value: a rollback to an old one, a provider's fetched token. */
export function credentialVersions(core: CredentialCore, deps: CredentialsServiceDeps) {
  const { store, keyring, clock } = deps;
  const { save, intact, tampered, meta, live, seal, write } = core;

  return {
    /** A new version whose value is that of `version` (static credentials only). */
    async rollback(actor: Actor, name: string, version: number): Promise<CredentialMeta> {
      return write(actor, async (tx, seq) => {
        const current = await live(name, tx);
        if (!(await intact(current, tx))) throw tampered(name);
        if (current.type !== "static") {
          throw invalidRequest(`credential ${name} is a token provider: its tokens are fetched, not rolled back`);
        }
        const old = await store.getVersion(name, version, tx);
        if (!old) throw notFound(`version ${version} of credential ${name}`);
        const next = current.latest_version + 1;
        const plain = openSealed(keyring, old.value_enc, valueAad(name, version));
        let sealed: Buffer;
        try {
          sealed = keyring.seal(plain, valueAad(name, next));
        } finally {
          plain.fill(0);
        }
        const now = clock.now();
        await store.insertVersion(tx, {
          name,
          version: next,
          value_enc: sealed,
          source: "rollback",
          rolled_back_from: version,
          expires_at: null,
          created_at: now,
          created_by: actor.principal,
        });
        const row = { ...current, current_version: next, latest_version: next, change_seq: seq, updated_at: now };
        await save(tx, row, true);
        return {
          result: meta(row, null),
          event: changeEvent(actor, "credential.rollback", `credential:${name}`, { version: next, from: version }),
          changes: [{ kind: "credential", ref: name }],
        };
      });
    },

    /**
     * Stores a token a provider fetched as the new current version, unless the provider's config
     * changed (or the credential was deleted) since the fetch began. Returns the version, or null.
     */
    async storeToken(name: string, configSeq: number, token: string, expiresAt: number): Promise<number | null> {
      checkValue(token, "access_token");
      return write({ principal: PROVIDER_ACTOR }, async (tx, seq) => {
        const current = await store.getForUpdate(tx, name);
        if (!current || current.deleted_at !== null || current.config_seq !== configSeq) {
          return { result: null, event: skipped(name), changes: [] };
        }
        if (!(await intact(current, tx))) return { result: null, event: skipped(name, "tamper_detected"), changes: [] };
        const now = clock.now();
        const version = current.latest_version + 1;
        await store.insertVersion(tx, {
          name,
          version,
          value_enc: seal(name, version, token),
          source: "token",
          rolled_back_from: null,
          expires_at: expiresAt,
          created_at: now,
          created_by: PROVIDER_ACTOR,
        });
        await store.pruneExpiredTokens(tx, name, version, now);
        await save(
          tx,
          {
            ...current,
            current_version: version,
            latest_version: version,
            status: "ok",
            status_message: null,
            status_at: now,
            refresh_lease_until: null,
            change_seq: seq,
            updated_at: now,
          },
          true,
        );
        return {
          result: version,
          event: {
            actor: PROVIDER_ACTOR,
            action: "credential.refresh",
            target: `credential:${name}`,
            outcome: "success",
            details: { version, expires_at: new Date(expiresAt).toISOString() },
          },
          changes: [{ kind: "credential", ref: name }],
        };
      });
    },
  };
}

/** A token fetched for a config that no longer exists: nothing is written, but the attempt is audited. */
function skipped(name: string, code = "config_changed") {
  return {
    actor: PROVIDER_ACTOR,
    action: "credential.refresh",
    target: `credential:${name}`,
    outcome: "failure" as const,
    code,
  };
}
