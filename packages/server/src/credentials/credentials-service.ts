import type { Actor } from "../admin/admin-context.js";
import { changeEvent, changeRunner } from "../admin/audited-change.js";
import type { AuditEventInput, AuditSink } from "../audit/audit-sink.js";
import type { Clock } from "../clock.js";
import type { Change, ChangeFeed } from "../cluster/change-feed.js";
import { DecryptError, type Keyring } from "../crypto/keyring.js";
import { invalidRequest, KeywardError, notFound } from "../errors.js";
import type { Db } from "../store/db.js";
import type { TransactionalEmitter } from "../webhooks/webhook-events.js";
import type { CredentialIntegrity } from "./credential-integrity.js";
import { checkTokenUrl, checkValue, type EgressConfig, type EgressInput, parseEgress } from "./credential-rules.js";
import {
  type CredentialRow,
  type CredentialsStore,
  clientSecretAad,
  type VersionMeta,
  type VersionRow,
  valueAad,
} from "./credentials-store.js";
import type { GrantsStore } from "./grants-store.js";

export const PROVIDER_TYPE = "oauth2_client_credentials";

export interface ProviderConfig {
  token_url: string;
  client_id: string;
  scope: string | null;
}

export type CredentialInput =
  | { type: "static"; value: string }
  | { type: typeof PROVIDER_TYPE; token_url: string; client_id: string; client_secret: string; scope?: string };

/** A credential as admins see it: metadata, never a value or the client secret. */
export interface CredentialMeta {
  row: CredentialRow;
  egress: EgressConfig | null;
  provider: ProviderConfig | null;
  /** The current version's expiry (token providers). */
  expiresAt: number | null;
}

const MAX_VERSIONS_SHOWN = 1000;
/** Who writes the versions a token provider fetches. */
export const PROVIDER_ACTOR = "keyward:token-provider";

/**
 * Credentials: sealed, versioned values, written only by admins (and token providers). Every
 * write takes the credential clock first (credentials-store nextSeq), which serializes writers:
 * versions of a name are linear and none is lost, however many PUTs race. Each change commits with
 * its audit record and its change-log entry, then is published so every replica drops its caches.
 */
export function createCredentialsService(deps: {
  db: Db;
  store: CredentialsStore;
  grants: GrantsStore;
  keyring: Keyring;
  clock: Clock;
  audit: AuditSink;
  changes: ChangeFeed;
  /** MACs every row it saves, and checks the rows it builds on (credential-integrity.ts). */
  integrity: CredentialIntegrity;
  /** Hears every committed write by its audit action (metrics). */
  onCommitted?: (action: string) => void;
  /** Where `credential.changed` is announced, in the change's own transaction (SPEC §10). */
  events?: Pick<TransactionalEmitter, "emitIn">;
}) {
  const { db, store, keyring, clock, audit, changes, integrity } = deps;

  /** Every write of a credential row goes through here: the MAC commits with the row. */
  const save = (tx: Db, row: CredentialRow, exists: boolean) =>
    store.save(tx, { ...row, pointer_mac: integrity.pointerMac(row) }, exists);

  /** Is this row, as read in `tx`, the one Keyward last wrote? Alarms when not. */
  const intact = async (row: CredentialRow, tx: Db = db) =>
    integrity.pointerIntact(row, await store.maxVersion(row.name, tx));

  /** A row that failed its check: nothing is built on it until an admin sets the credential again. */
  const tampered = (name: string) =>
    new KeywardError(
      "credential_unavailable",
      `credential ${name} failed its integrity check (changed outside Keyward); set it again to repair it`,
    );

  function meta(row: CredentialRow, expiresAt: number | null): CredentialMeta {
    return {
      row,
      egress: row.egress ? (JSON.parse(row.egress) as EgressConfig) : null,
      provider: row.provider ? (JSON.parse(row.provider) as ProviderConfig) : null,
      expiresAt,
    };
  }

  async function live(name: string, tx?: Db): Promise<CredentialRow> {
    const row = tx ? await store.getForUpdate(tx, name) : await store.get(name);
    if (!row || row.deleted_at !== null) throw notFound(`credential ${name}`);
    return row;
  }

  function seal(name: string, version: number, value: string): Buffer {
    const plain = Buffer.from(value, "utf8");
    try {
      return keyring.seal(plain, valueAad(name, version));
    } finally {
      plain.fill(0);
    }
  }

  const change = changeRunner(db, audit, changes);
  /** One audited write on the credential clock; what it changed is published once it committed. */
  async function write<T>(
    actor: Actor,
    fn: (tx: Db, seq: number) => Promise<{ result: T; event: AuditEventInput; changes: Change[] }>,
  ): Promise<T> {
    let action = "";
    const result = await change(actor, async (tx) => {
      const out = await fn(tx, await store.nextSeq(tx));
      action = out.changes.length > 0 ? out.event.action : "";
      if (action && deps.events) await deps.events.emitIn(tx, "credential.changed", changedEvent(out.event));
      return out;
    });
    if (action) deps.onCommitted?.(action);
    return result;
  }

  return {
    /**
     * Creates or updates a credential. A static value becomes a new version; a token provider's
     * config is stored (the caller then asks the provider for a first token). `egress` undefined
     * keeps the current template, null removes it.
     */
    async set(
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
    },

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

    /** Deletes every version (the values are gone for good) and every grant of it; the name stays as a tombstone. */
    async remove(actor: Actor, name: string): Promise<void> {
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
    },

    async get(name: string): Promise<{ credential: CredentialMeta; versions: VersionMeta[] }> {
      const row = await live(name);
      const versions = await store.listVersions(name, MAX_VERSIONS_SHOWN);
      const expiresAt = versions.find((v) => v.version === row.current_version)?.expires_at ?? null;
      return { credential: meta(row, expiresAt), versions };
    },

    async list(after: string | undefined, limit: number): Promise<CredentialMeta[]> {
      return (await store.list(after, limit)).map((row) => meta(row, null));
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

    /**
     * Serves nothing from a row Keyward did not write: the egress and token-provider paths ask
     * this before using a row's pointer, egress or provider config (false: refuse, already alarmed).
     */
    pointerIntact: (row: CredentialRow) => intact(row),

    /** The client secret of a provider, opened for one token request (the caller zeroes it). */
    clientSecret(row: CredentialRow): Buffer {
      if (!row.provider_secret) throw new Error(`credential ${row.name} has no client secret`);
      return openSealed(keyring, row.provider_secret, clientSecretAad(row.name, row.config_seq));
    },

    /** Opens a version's value. DecryptError names the record, never the data. */
    openVersion(v: Pick<VersionRow, "name" | "version" | "value_enc">): string {
      const plain = openSealed(keyring, v.value_enc, valueAad(v.name, v.version));
      try {
        return plain.toString("utf8");
      } finally {
        plain.fill(0);
      }
    },
  };
}

/** `credential.changed`: the name, what happened and the version now current; never a value. */
function changedEvent(e: AuditEventInput): Record<string, unknown> {
  const version = e.details?.version;
  return {
    name: e.target?.replace(/^credential:/, ""),
    action: e.action.replace(/^credential\./, ""),
    version: typeof version === "number" ? version : null,
    actor: e.actor,
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

function openSealed(keyring: Keyring, sealed: Buffer, aad: string): Buffer {
  try {
    return keyring.open(sealed, aad);
  } catch (err) {
    if (err instanceof DecryptError) {
      throw new KeywardError("credential_unavailable", `${aad} cannot be decrypted: ${err.message}`);
    }
    throw err;
  }
}

export type CredentialsService = ReturnType<typeof createCredentialsService>;
