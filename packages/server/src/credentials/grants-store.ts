import type { Db } from "../store/db.js";
import type { CredentialRow } from "./credentials-store.js";

export type GrantKind = "credential" | "user_credential" | "may_call";
export type CredentialMode = "read" | "inject";

/**
 * A row of `agent_grants`. Credential grants are never deleted while their agent lives: a removed
 * one becomes a tombstone (`mode = 'none'`) stamped with the clock value of its removal, so a
 * `since` cursor can tell the agent the name is gone. The other kinds are plain rows.
 */
export interface GrantRow {
  agent: string;
  kind: GrantKind;
  name: string;
  mode: CredentialMode | "granted" | "none";
  change_seq: number;
  /** Keyward's MAC over agent, kind, name and mode (credential-integrity.ts); null on tombstones. */
  mac: string | null;
}

/** What an agent's credential view is built from: its credential grants joined with the credentials. */
export interface AgentCredentialRow {
  agent: string;
  kind: "credential";
  name: string;
  mode: CredentialMode | "none";
  grant_mac: string | null;
  grant_seq: number;
  cred_seq: number | null;
  version: number | null;
  deleted_at: number | null;
  /** Only for `read` grants of a credential that has a current version. */
  value_enc: Buffer | null;
  expires_at: number | null;
  /** What the credential's pointer MAC covers, and the MAC (credential-integrity.ts). */
  type: CredentialRow["type"] | null;
  latest_version: number | null;
  egress: string | null;
  provider: string | null;
  config_seq: number | null;
  pointer_mac: string | null;
  /** The highest version stored for the name. */
  max_version: number | null;
}

export function createGrantsStore(db: Db) {
  return {
    /** Live grants of an agent (tombstones left out), by kind then name. */
    async list(agent: string, tx: Db = db): Promise<GrantRow[]> {
      const rows = await tx.query<GrantRow>(
        "SELECT agent, kind, name, mode, change_seq, mac FROM agent_grants WHERE agent = $1 AND mode <> 'none' ORDER BY kind, name",
        [agent],
      );
      return rows.map((r) => ({ ...r, change_seq: Number(r.change_seq) }));
    },

    /** Every credential grant row of an agent, tombstones included. */
    async credentialRows(tx: Db, agent: string): Promise<GrantRow[]> {
      const rows = await tx.query<GrantRow>(
        "SELECT agent, kind, name, mode, change_seq, mac FROM agent_grants WHERE agent = $1 AND kind = 'credential'",
        [agent],
      );
      return rows.map((r) => ({ ...r, change_seq: Number(r.change_seq) }));
    },

    /** `mac` is the grant's MAC, computed by the caller (the store holds no key). */
    async upsertCredential(
      tx: Db,
      agent: string,
      name: string,
      mode: GrantRow["mode"],
      seq: number,
      mac: string | null,
    ): Promise<void> {
      const n = await tx.exec(
        "UPDATE agent_grants SET mode = $4, change_seq = $5, mac = $6 WHERE agent = $1 AND kind = $2 AND name = $3",
        [agent, "credential", name, mode, seq, mac],
      );
      if (n === 0) {
        await tx.exec(
          "INSERT INTO agent_grants (agent, kind, name, mode, change_seq, mac) VALUES ($1, $2, $3, $4, $5, $6)",
          [agent, "credential", name, mode, seq, mac],
        );
      }
    },

    /** Replaces an agent's grants of a plain kind (user_credential, may_call). */
    async replacePlain(
      tx: Db,
      agent: string,
      kind: GrantKind,
      names: readonly string[],
      seq: number,
      macOf: (name: string) => string | null,
    ): Promise<void> {
      await tx.exec("DELETE FROM agent_grants WHERE agent = $1 AND kind = $2", [agent, kind]);
      for (const name of names) {
        await tx.exec(
          "INSERT INTO agent_grants (agent, kind, name, mode, change_seq, mac) VALUES ($1, $2, $3, $4, $5, $6)",
          [agent, kind, name, "granted", seq, macOf(name)],
        );
      }
    },

    /** A deleted credential: every grant of it becomes a tombstone. Returns the agents that held one. */
    async tombstoneCredential(tx: Db, name: string, seq: number): Promise<string[]> {
      const rows = await tx.query<{ agent: string }>(
        "UPDATE agent_grants SET mode = 'none', change_seq = $2, mac = NULL WHERE kind = 'credential' AND name = $1 AND mode <> 'none' RETURNING agent",
        [name, seq],
      );
      return rows.map((r) => r.agent);
    },

    /** A deleted agent takes its grants with it, so an agent created later under its name starts with none. */
    async removeAgent(tx: Db, agent: string): Promise<number> {
      return tx.exec("DELETE FROM agent_grants WHERE agent = $1", [agent]);
    },

    /**
     * One statement, so one snapshot: the agent's credential grants, each credential's state and,
     * for `read` grants, the sealed current value. With the clock serializing writers, everything
     * up to the highest change_seq seen here is visible here (see credentials-store nextSeq).
     */
    async agentCredentials(agent: string): Promise<AgentCredentialRow[]> {
      const rows = await db.query<AgentCredentialRow>(
        `SELECT g.agent, g.kind, g.name, g.mode, g.mac AS grant_mac, g.change_seq AS grant_seq,
                c.change_seq AS cred_seq, c.current_version AS version, c.deleted_at, v.value_enc, v.expires_at,
                c.type, c.latest_version, c.egress, c.provider, c.config_seq, c.pointer_mac,
                (SELECT MAX(m.version) FROM credential_versions m WHERE m.name = g.name) AS max_version
         FROM agent_grants g
         LEFT JOIN credentials c ON c.name = g.name
         LEFT JOIN credential_versions v ON g.mode = 'read' AND v.name = c.name AND v.version = c.current_version
         WHERE g.agent = $1 AND g.kind = 'credential'
         ORDER BY g.name`,
        [agent],
      );
      return rows.map((r) => ({
        ...r,
        grant_seq: Number(r.grant_seq),
        cred_seq: r.cred_seq === null ? null : Number(r.cred_seq),
        version: r.version === null ? null : Number(r.version),
        expires_at: r.expires_at === null ? null : Number(r.expires_at),
        latest_version: r.latest_version === null ? null : Number(r.latest_version),
        config_seq: r.config_seq === null ? null : Number(r.config_seq),
        max_version: r.max_version === null ? null : Number(r.max_version),
        deleted_at: r.deleted_at === null ? null : Number(r.deleted_at),
      }));
    },
  };
}

export type GrantsStore = ReturnType<typeof createGrantsStore>;
