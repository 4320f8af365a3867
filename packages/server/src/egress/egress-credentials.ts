import { createBoundedCache } from "@keyward/sdk/cache";
import { createRedactor, type Redactor } from "@keyward/sdk/redaction";
import type { Clock } from "../clock.js";
import { isCredentialName } from "../credentials/credential-rules.js";
import type { CredentialRow, VersionRow } from "../credentials/credentials-store.js";
import type { CredentialMode } from "../credentials/grants-store.js";
import { KeywardError } from "../errors.js";
import type { Logger } from "../ops/logger.js";
import { type EgressBase, egressBase } from "./egress-target.js";

/** A credential ready to be injected: its secret, where it may go, and its redactor. */
export interface EgressCredential {
  name: string;
  version: number;
  base: EgressBase;
  /** For the audit record: where the secret went. */
  host: string;
  /** Lower-case header name and its full value (the egress `format` filled in). */
  inject: { name: string; value: string };
  redactor: Redactor;
}

export interface EgressCredentialSource {
  /** How `agent` may use credential `name` (memory once cached; the grants service's cache). */
  mode(agent: string, name: string): Promise<CredentialMode | null>;
  /** The credential's row (one store read). */
  get(name: string): Promise<CredentialRow | undefined>;
  /**
   * Is the row the one Keyward wrote (its pointer MAC verifies, no newer version was hidden)?
   * False is alarmed by the check itself (credentials/credential-integrity.ts).
   */
  pointerIntact(row: CredentialRow): Promise<boolean>;
  getVersion(name: string, version: number): Promise<VersionRow | undefined>;
  /** Decrypts a version's value. */
  open(v: Pick<VersionRow, "name" | "version" | "value_enc">): string;
}

type Entry = { ok: true; credential: EgressCredential; staleAt: number } | { ok: false; error: KeywardError };

const MAX_ENTRIES = 10_000;
/** Visible ASCII, space and tab: what a header value can carry without being mangled or refused. */
const HEADER_SAFE = /^[\x20-\x7e\t]*$/;

/**
 * The credentials agents use through egress, by name, decrypted once per version and kept in
 * memory with their compiled redactors (compiling costs far more than a request). The grant is
 * checked on every request (from the grants service's per-agent cache); the store is read only on
 * a miss. The `credential` change handler drops a name on every replica.
 *
 * An agent learns nothing about credentials it is not granted: unknown, malformed and ungranted
 * names all get the same 403.
 */
export function createEgressCredentials(deps: { source: EgressCredentialSource; clock: Clock; logger: Logger }) {
  const { source, clock, logger } = deps;
  /** Refusals too (until a change); a served value until its token expires (`staleAt`). */
  const entries = createBoundedCache<string, Entry>({ max: MAX_ENTRIES, now: () => clock.now() });

  async function load(name: string): Promise<Entry> {
    const row = await source.get(name);
    if (!row || row.deleted_at !== null) return denied(name);
    // Before anything the row says is used: a pointer moved back, or an egress base_url pointed
    // elsewhere, outside Keyward would otherwise send an old value, or this one to another host.
    if (!(await source.pointerIntact(row))) {
      return fail("credential_unavailable", `credential ${name} failed its integrity check`);
    }
    if (!row.egress) {
      return fail("egress_not_configured", `credential ${name} has no egress configuration`);
    }
    if (row.current_version === null) {
      return fail("credential_unavailable", `credential ${name} has no value yet`);
    }
    const version = await source.getVersion(name, row.current_version);
    if (!version) return fail("credential_unavailable", `credential ${name}: its current version is missing`);
    let value: string;
    try {
      value = source.open(version);
    } catch (err) {
      // Named by record, never by content.
      logger.error(
        { credential: name, version: version.version, err: (err as Error).message },
        "egress: credential unreadable",
      );
      return fail("credential_unavailable", `credential ${name} cannot be decrypted`);
    }
    const egress = JSON.parse(row.egress) as { base_url: string; header: string; format: string };
    const headerValue = egress.format.split("{value}").join(value);
    if (!HEADER_SAFE.test(headerValue)) {
      return fail("credential_unavailable", `credential ${name}: its value cannot be sent in an HTTP header`);
    }
    return {
      ok: true,
      credential: {
        name,
        version: version.version,
        base: egressBase(egress.base_url),
        host: new URL(egress.base_url).host,
        inject: { name: egress.header.toLowerCase(), value: headerValue },
        redactor: createRedactor([value]),
      },
      staleAt: version.expires_at ?? Number.POSITIVE_INFINITY,
    };
  }

  function cached(name: string): Promise<Entry> {
    // A change voids a load of the name in flight (delete/clear below), so its result is not kept.
    return entries.load(
      name,
      () => load(name),
      (entry) => (entry.ok && entry.staleAt !== Number.POSITIVE_INFINITY ? entry.staleAt - clock.now() : undefined),
    );
  }

  return {
    /** The credential `agent` may have injected, or the SPEC §6 error. */
    async resolve(agent: string, name: string): Promise<EgressCredential> {
      if (!isCredentialName(name)) throw notGranted(name);
      const mode = await source.mode(agent, name);
      if (mode !== "read" && mode !== "inject") throw notGranted(name);
      const entry = await cached(name);
      if (!entry.ok) throw entry.error;
      if (clock.now() >= entry.staleAt) {
        throw new KeywardError(
          "credential_unavailable",
          `credential ${name}: its token expired and could not be refreshed`,
        );
      }
      return entry.credential;
    },

    /** `credential` change handler. */
    credentialChanged(name: string): void {
      entries.delete(name);
    },

    /** The feed lost track: drop everything. */
    clear(): void {
      entries.clear();
    },
  };
}

function denied(name: string): Entry {
  return { ok: false, error: notGranted(name) };
}

function fail(code: "egress_not_configured" | "credential_unavailable", message: string): Entry {
  return { ok: false, error: new KeywardError(code, message) };
}

/** One answer for unknown, malformed and ungranted names. The name is the agent's own input. */
function notGranted(name: string): KeywardError {
  const shown = isCredentialName(name) ? name : "(invalid name)";
  return new KeywardError("credential_not_granted", `credential ${shown} is not granted to this agent`);
}

export type EgressCredentials = ReturnType<typeof createEgressCredentials>;
