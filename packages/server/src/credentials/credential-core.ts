import type { Actor } from "../admin/admin-context.js";
import { changeRunner } from "../admin/audited-change.js";
import type { AuditEventInput, AuditSink } from "../audit/audit-sink.js";
import type { Clock } from "../clock.js";
import type { Change, ChangeFeed } from "../cluster/change-feed.js";
import { DecryptError, type Keyring } from "../crypto/keyring.js";
import { KeywardError, notFound } from "../errors.js";
import type { Db } from "../store/db.js";
import type { TransactionalEmitter } from "../webhooks/webhook-events.js";
import type { CredentialIntegrity } from "./credential-integrity.js";
import type { EgressConfig } from "./credential-rules.js";
import { type CredentialRow, type CredentialsStore, valueAad } from "./credentials-store.js";
import type { GrantsStore } from "./grants-store.js";

// What the parts of the credentials service share (credentials-service.ts composes them): the
// types callers see, and the one way a row is saved, checked, sealed and written under audit.

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

/** Who writes the versions a token provider fetches. */
export const PROVIDER_ACTOR = "keyward:token-provider";

export interface CredentialsServiceDeps {
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
}

/**
 * Every write takes the credential clock first (credentials-store nextSeq), which serializes
 * writers: versions of a name are linear and none is lost, however many PUTs race. Each change
 * commits with its audit record and its change-log entry, then is published so every replica
 * drops its caches.
 */
export function createCredentialCore(deps: CredentialsServiceDeps) {
  const { db, store, keyring, audit, changes, integrity } = deps;

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

  return { save, intact, tampered, meta, live, seal, write };
}

export type CredentialCore = ReturnType<typeof createCredentialCore>;

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

export function openSealed(keyring: Keyring, sealed: Buffer, aad: string): Buffer {
  try {
    return keyring.open(sealed, aad);
  } catch (err) {
    if (err instanceof DecryptError) {
      throw new KeywardError("credential_unavailable", `${aad} cannot be decrypted: ${err.message}`);
    }
    throw err;
  }
}
