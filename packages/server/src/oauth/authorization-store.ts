import type { Db } from "../store/db.js";

/** An authorization request between /oauth/authorize and its code (oauth_requests). */
export interface AuthorizationRequestRow {
  state_hash: string;
  browser_hash: string;
  client_id: string;
  redirect_uri: string;
  client_state: string | null;
  code_challenge: string;
  resource: string;
  /** The scope the client asked for, or null (then: what the user may have on the resource). */
  scope: string | null;
  nonce: string;
  provider_verifier: string;
  /** Set once the user signed in: `user:<id>`, and the scopes shown on the consent page. */
  user_id: string | null;
  granted_scope: string | null;
  consent_hash: string | null;
  created_at: number;
  expires_at: number;
}

/** An issued authorization code (oauth_codes), by keyed hash. */
export interface AuthorizationCodeRow {
  hash: string;
  client_id: string;
  redirect_uri: string;
  code_challenge: string;
  resource: string;
  scope: string;
  user_id: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
  jti: string | null;
  jti_expires_at: number | null;
  family: string | null;
}

const REQUEST_COLS =
  "state_hash, browser_hash, client_id, redirect_uri, client_state, code_challenge, resource, scope, nonce, provider_verifier, user_id, granted_scope, consent_hash, created_at, expires_at";
const CODE_COLS =
  "hash, client_id, redirect_uri, code_challenge, resource, scope, user_id, created_at, expires_at, used_at, jti, jti_expires_at, family";

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

function toRequest(r: Record<string, unknown>): AuthorizationRequestRow {
  return {
    ...(r as unknown as AuthorizationRequestRow),
    created_at: Number(r.created_at),
    expires_at: Number(r.expires_at),
  };
}

function toCode(r: Record<string, unknown>): AuthorizationCodeRow {
  return {
    ...(r as unknown as AuthorizationCodeRow),
    created_at: Number(r.created_at),
    expires_at: Number(r.expires_at),
    used_at: num(r.used_at),
    jti_expires_at: num(r.jti_expires_at),
  };
}

/** SQL for pending authorization requests and issued codes: both keyed by keyed hashes, both short-lived. */
export function createAuthorizationStore(db: Db) {
  return {
    /**
     * Inserts unless `max` live requests exist; false when full. On PostgreSQL the table is locked
     * against other writers first (as oauth_clients' cap is): under READ COMMITTED two replicas
     * could otherwise both count max − 1 and both insert. SQLite's BEGIN IMMEDIATE serializes.
     */
    async insertRequest(row: AuthorizationRequestRow, max: number, now: number): Promise<boolean> {
      return db.transaction(async (tx) => {
        if (tx.engine === "postgres") await tx.exec("LOCK TABLE oauth_requests IN SHARE ROW EXCLUSIVE MODE");
        const [count] = await tx.query<{ n: number | string }>(
          "SELECT COUNT(*) AS n FROM oauth_requests WHERE expires_at > $1",
          [now],
        );
        if (Number(count?.n ?? 0) >= max) return false;
        const values = REQUEST_COLS.split(", ").map((c) => row[c as keyof AuthorizationRequestRow]);
        const marks = values.map((_, i) => `$${i + 1}`).join(", ");
        await tx.exec(`INSERT INTO oauth_requests (${REQUEST_COLS}) VALUES (${marks})`, values);
        return true;
      });
    },

    /**
     * Takes the request a provider's `state` names, once: deleted as it is read, so a replayed
     * callback finds nothing. Undefined when unknown, already taken or expired.
     */
    async takeByState(stateHash: string, now: number): Promise<AuthorizationRequestRow | undefined> {
      return db.transaction(async (tx) => {
        const rows = await tx.query<Record<string, unknown>>(
          `SELECT ${REQUEST_COLS} FROM oauth_requests WHERE state_hash = $1 AND consent_hash IS NULL`,
          [stateHash],
        );
        const row = rows[0] ? toRequest(rows[0]) : undefined;
        if (!row) return undefined;
        if (
          (await tx.exec("DELETE FROM oauth_requests WHERE state_hash = $1 AND consent_hash IS NULL", [stateHash])) !==
          1
        )
          return undefined;
        return row.expires_at > now ? row : undefined;
      });
    },

    /** Puts back a signed-in request awaiting consent, under the consent id's keyed hash. */
    async insertConsent(row: AuthorizationRequestRow): Promise<void> {
      const values = REQUEST_COLS.split(", ").map((c) => row[c as keyof AuthorizationRequestRow]);
      const marks = values.map((_, i) => `$${i + 1}`).join(", ");
      await db.exec(`INSERT INTO oauth_requests (${REQUEST_COLS}) VALUES (${marks})`, values);
    },

    /** Takes a request awaiting consent, once (approve or deny). */
    async takeByConsent(consentHash: string, now: number): Promise<AuthorizationRequestRow | undefined> {
      return db.transaction(async (tx) => {
        const rows = await tx.query<Record<string, unknown>>(
          `SELECT ${REQUEST_COLS} FROM oauth_requests WHERE consent_hash = $1`,
          [consentHash],
        );
        const row = rows[0] ? toRequest(rows[0]) : undefined;
        if (!row) return undefined;
        if ((await tx.exec("DELETE FROM oauth_requests WHERE consent_hash = $1", [consentHash])) !== 1)
          return undefined;
        return row.expires_at > now ? row : undefined;
      });
    },

    /** A request awaiting consent, read only (the page is shown; nothing is spent). */
    async peekConsent(consentHash: string): Promise<AuthorizationRequestRow | undefined> {
      const rows = await db.query<Record<string, unknown>>(
        `SELECT ${REQUEST_COLS} FROM oauth_requests WHERE consent_hash = $1`,
        [consentHash],
      );
      return rows[0] ? toRequest(rows[0]) : undefined;
    },

    async insertCode(row: AuthorizationCodeRow): Promise<void> {
      const values = CODE_COLS.split(", ").map((c) => row[c as keyof AuthorizationCodeRow]);
      const marks = values.map((_, i) => `$${i + 1}`).join(", ");
      await db.exec(`INSERT INTO oauth_codes (${CODE_COLS}) VALUES (${marks})`, values);
    },

    async getCode(hash: string): Promise<AuthorizationCodeRow | undefined> {
      const rows = await db.query<Record<string, unknown>>(`SELECT ${CODE_COLS} FROM oauth_codes WHERE hash = $1`, [
        hash,
      ]);
      return rows[0] ? toCode(rows[0]) : undefined;
    },

    /** Marks a code spent; false when it already was (a replay, or a lost race). */
    async spendCode(hash: string, now: number): Promise<boolean> {
      return (
        (await db.exec("UPDATE oauth_codes SET used_at = $1 WHERE hash = $2 AND used_at IS NULL", [now, hash])) === 1
      );
    },

    /** Records what was issued from a code, so that its replay can revoke it. */
    async recordIssued(hash: string, issued: { jti: string; expiresAt: number; family: string | null }): Promise<void> {
      await db.exec("UPDATE oauth_codes SET jti = $1, jti_expires_at = $2, family = $3 WHERE hash = $4", [
        issued.jti,
        issued.expiresAt,
        issued.family,
        hash,
      ]);
    },

    /**
     * Drops expired requests, and codes once whatever was issued from them can no longer matter
     * (a replay after the code's own expiry is refused as expired; kept a day for the audit of it).
     */
    async purge(now: number): Promise<void> {
      await db.exec("DELETE FROM oauth_requests WHERE expires_at <= $1", [now]);
      await db.exec("DELETE FROM oauth_codes WHERE expires_at <= $1", [now - 86_400_000]);
    },

    async counts(): Promise<{ requests: number; codes: number }> {
      const [r] = await db.query<{ n: number | string }>("SELECT COUNT(*) AS n FROM oauth_requests");
      const [c] = await db.query<{ n: number | string }>("SELECT COUNT(*) AS n FROM oauth_codes");
      return { requests: Number(r?.n ?? 0), codes: Number(c?.n ?? 0) };
    },
  };
}

export type AuthorizationStore = ReturnType<typeof createAuthorizationStore>;
