import type { Actor } from "../admin/admin-context.js";
import { changeEvent } from "../admin/audited-change.js";
import type { Change } from "../cluster/change-feed.js";
import type {
  CredentialCore,
  CredentialInput,
  CredentialMeta,
  CredentialsServiceDeps,
  ProviderConfig,
} from "./credential-core.js";
import { checkTokenUrl, checkValue, type EgressInput, parseEgress } from "./credential-rules.js";
import { type CredentialRow, clientSecretAad } from "./credentials-store.js";

/** An admin's writes of a credential: create or update (`set`) and delete (`remove`). */
export function credentialWrites(core: CredentialCore, deps: CredentialsServiceDeps) {
  return { set: credentialSet(core, deps), remove: credentialRemove(core, deps) };
}

function credentialSet(core: CredentialCore, deps: CredentialsServiceDeps) {
  const { store, keyring, clock } = deps;
  const { save, intact, meta, seal, write } = core;

  /**
   * Creates or updates a credential. A static value becomes a new version; a token provider's
   * config is stored (the caller then asks the provider for a first token). `egress` undefined
   * keeps the current template, null removes it.
   */
  return async function set(
    actor: Actor,
    name: string,
    input: CredentialInput,
    egressInput: EgressInput | null | undefined,
  ): Promise<{ credential: CredentialMeta; created: boolean }> {
    const egress = egressInput ? parseEgress(egressInput) : egressInput;
    if (input.type === "static") checkValue(input.value);
    else {
      checkTokenUrl(input.token_url);
      checkValue(input.client_secret, "client_secret");
    }
    return write(actor, async (tx, seq) => {
      const now = clock.now();
      const current = await store.getForUpdate(tx, name);
      const exists = current !== undefined && current.deleted_at === null;
      // A row changed outside Keyward passes nothing on (no pointer, no egress): this write
      // repairs it. Numbering continues above every stored version, so none is reused.
      const trusted = exists && (await intact(current, tx));
      const highest = current ? Math.max(current.latest_version, (await store.maxVersion(name, tx)) ?? 0) : 0;
      const row: CredentialRow = {
        name,
        type: input.type,
        current_version: trusted ? current.current_version : null,
        latest_version: highest,
        egress: egress === undefined ? (trusted ? current.egress : null) : egress && JSON.stringify(egress),
        provider: null,
        provider_secret: null,
        config_seq: seq,
        status: "ok",
        status_message: null,
        status_at: null,
        refresh_lease_until: null,
        change_seq: exists ? current.change_seq : seq,
        created_at: exists ? current.created_at : now,
        updated_at: now,
        deleted_at: null,
        pointer_mac: null,
      };
      let expiresAt: number | null = null;
      if (input.type === "static") {
        const version = row.latest_version + 1;
        await store.insertVersion(tx, {
          name,
          version,
          value_enc: seal(name, version, input.value),
          source: "set",
          rolled_back_from: null,
          expires_at: null,
          created_at: now,
          created_by: actor.principal,
        });
        Object.assign(row, { current_version: version, latest_version: version, change_seq: seq });
      } else {
        const config: ProviderConfig = {
          token_url: checkTokenUrl(input.token_url),
          client_id: input.client_id,
          scope: input.scope ?? null,
        };
        const secret = Buffer.from(input.client_secret, "utf8");
        try {
          row.provider_secret = keyring.seal(secret, clientSecretAad(name, seq));
        } finally {
          secret.fill(0);
        }
        row.provider = JSON.stringify(config);
        row.status = "pending";
        row.status_message = "fetching a token with this configuration";
        row.status_at = now;
        if (row.current_version !== null) {
          expiresAt = (await store.getVersion(name, row.current_version, tx))?.expires_at ?? null;
        }
      }
      await save(tx, row, current !== undefined);
      return {
        result: { credential: meta(row, expiresAt), created: !exists },
        event: changeEvent(actor, exists ? "credential.update" : "credential.create", `credential:${name}`, {
          type: input.type,
          version: row.current_version,
          egress_base_url: egress === undefined ? undefined : (egress?.base_url ?? null),
        }),
        changes: [{ kind: "credential", ref: name }],
      };
    });
  };
}

function credentialRemove(core: CredentialCore, deps: CredentialsServiceDeps) {
  const { store, clock } = deps;
  const { save, live, write } = core;

  /** Deletes every version (the values are gone for good) and every grant of it; the name stays as a tombstone. */
  return async function remove(actor: Actor, name: string): Promise<void> {
    await write(actor, async (tx, seq) => {
      const current = await live(name, tx);
      const now = clock.now();
      // Deleting needs no check: it serves nothing, and it is how a tampered row can be cleared.
      await store.deleteVersions(tx, name);
      const agents = await deps.grants.tombstoneCredential(tx, name, seq);
      await save(
        tx,
        {
          ...current,
          current_version: null,
          egress: null,
          provider: null,
          provider_secret: null,
          status: "deleted",
          status_message: null,
          status_at: now,
          refresh_lease_until: null,
          change_seq: seq,
          updated_at: now,
          deleted_at: now,
        },
        true,
      );
      return {
        result: undefined,
        event: changeEvent(actor, "credential.delete", `credential:${name}`, { ungranted_agents: agents }),
        changes: [{ kind: "credential", ref: name }, ...agents.map((a): Change => ({ kind: "grant", ref: a }))],
      };
    });
  };
}
