import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { base64url } from "@keyward/sdk/jose";
import type { Clock } from "../clock.js";
import type { Db } from "../store/db.js";
import { encodeHeader, JWS_ALG, signCompact, type VerifyResult, verifyCompact } from "./jws.js";
import { DecryptError, type Keyring } from "./keyring.js";
import { createSigningKeysStore, type NewSigningKey, type SigningKeyRow } from "./signing-keys-store.js";

export type { VerifiedJwt, VerifyResult } from "./jws.js";

/**
 * The ES256 keys Keyward signs its tokens with. Every key lives in `signing_keys` with its private
 * half sealed by the keyring under `signing_keys:<kid>:private`; in memory each is a KeyObject.
 * sign/verify/jwks touch memory only; init/reload/rotate touch the store.
 */
export interface SigningKeys {
  /** Loads every live key and creates the first one on an empty store. */
  init(): Promise<void>;
  /** Re-reads the store, e.g. after another replica rotated. */
  reload(): Promise<void>;
  readonly activeKid: string;
  /** A compact JWS with header `{alg: "ES256", typ, kid}`; `typ` defaults to `at+jwt`. */
  sign(claims: Record<string, unknown>, typ?: string): string;
  /** Checks the signature only (no claims, no expiry); bad tokens give `ok: false`, never a throw. */
  verify(token: string, opts?: { typ?: string }): VerifyResult;
  /** Public JWKs of every key not yet removed, retired ones included. */
  jwks(): { keys: Array<Record<string, string>> };
  /** Makes a new key active; the old one stays verifiable for `maxTokenLifetimeS` seconds. */
  rotate(maxTokenLifetimeS: number): Promise<{ kid: string }>;
  /**
   * The store half of `rotate`, inside the caller's transaction (so the rotation, its audit record
   * and its change-log entry commit together). Call `reload()` after commit.
   */
  rotateIn(tx: Db, maxTokenLifetimeS: number): Promise<{ kid: string }>;
}

interface LoadedKey {
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  jwk: Record<string, string>;
}

interface State {
  /** The key `sign` uses, with its encoded headers by typ (typ values come from code: few). */
  active: { key: LoadedKey; headers: Map<string, string> } | undefined;
  byKid: ReadonlyMap<string, LoadedKey>;
  verifyKeys: ReadonlyMap<string, KeyObject>;
}

const EMPTY: State = { active: undefined, byKid: new Map(), verifyKeys: new Map() };
const DEFAULT_TYP = "at+jwt";

export function privateKeyAad(kid: string): string {
  return `signing_keys:${kid}:private`;
}

export function createSigningKeys(deps: { db: Db; keyring: Keyring; clock: Clock }): SigningKeys {
  const store = createSigningKeysStore(deps.db);
  // Swapped whole, so a request never sees half of a reload.
  let state = EMPTY;

  let reloading: Promise<void> | undefined;
  let reloadAgain = false;

  /**
   * Reloads run one at a time: replicas announce rotations (a `signing_key` change) and the
   * maintenance timer reloads too, and a slower, older read finishing last must not undo a newer
   * one. A reload asked for while one runs gets one more read after it.
   */
  function reload(): Promise<void> {
    if (reloading) {
      reloadAgain = true;
      return reloading;
    }
    reloading = (async () => {
      do {
        reloadAgain = false;
        await reloadOnce();
      } while (reloadAgain);
    })().finally(() => {
      reloading = undefined;
    });
    return reloading;
  }

  async function reloadOnce(): Promise<void> {
    const rows = await store.listLive(deps.clock.now());
    const byKid = new Map<string, LoadedKey>();
    for (const row of rows) {
      // A kid is the key's thumbprint, so a kid already in memory is the same key: skip the unseal.
      byKid.set(row.kid, state.byKid.get(row.kid) ?? loadKey(row, deps.keyring));
    }
    // Oldest active key wins: a replica that creates a key after another did sees the earlier one
    // and picks it too, so replicas converge without coordination. Rotation retires all others.
    const activeRow = rows.find((r) => r.retired_at === null);
    const activeKey = activeRow ? byKid.get(activeRow.kid) : undefined;
    const keep = activeKey && state.active?.key === activeKey ? state.active : undefined;
    state = {
      active: keep ?? (activeKey ? { key: activeKey, headers: new Map() } : undefined),
      byKid,
      verifyKeys: new Map([...byKid].map(([kid, k]) => [kid, k.publicKey])),
    };
  }

  async function insertRotated(tx: Db | undefined, maxTokenLifetimeS: number): Promise<{ kid: string }> {
    if (!Number.isFinite(maxTokenLifetimeS) || maxTokenLifetimeS < 0) {
      throw new Error("maxTokenLifetimeS must be a non-negative number of seconds");
    }
    const now = deps.clock.now();
    const key = generateKey(deps.keyring, now);
    await store.insertAndRetireOthers(key, now + Math.ceil(maxTokenLifetimeS * 1000), tx);
    return { kid: key.kid };
  }

  return {
    async init() {
      await reload();
      if (state.active) return;
      await store.insertFirst(generateKey(deps.keyring, deps.clock.now()));
      await reload();
      if (!state.active) throw new Error("no active signing key after creating one");
    },

    reload,

    get activeKid() {
      return activeOrThrow(state).key.kid;
    },

    sign(claims, typ = DEFAULT_TYP) {
      const active = activeOrThrow(state);
      let header = active.headers.get(typ);
      if (header === undefined) {
        header = encodeHeader(active.key.kid, typ);
        if (active.headers.size < 16) active.headers.set(typ, header);
      }
      return signCompact(header, claims, active.key.privateKey);
    },

    verify: (token, opts) => verifyCompact(token, state.verifyKeys, opts?.typ),

    jwks: () => ({ keys: [...state.byKid.values()].map((k) => ({ ...k.jwk })) }),

    async rotate(maxTokenLifetimeS) {
      const rotated = await insertRotated(undefined, maxTokenLifetimeS);
      await reload();
      return rotated;
    },

    rotateIn: (tx, maxTokenLifetimeS) => insertRotated(tx, maxTokenLifetimeS),
  };
}

function activeOrThrow(state: State): NonNullable<State["active"]> {
  if (!state.active) throw new Error("no active signing key: call init() first");
  return state.active;
}

function generateKey(keyring: Keyring, now: number): NewSigningKey {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwk = publicJwkOf(publicKey);
  const der = privateKey.export({ format: "der", type: "pkcs8" });
  try {
    return {
      kid: jwk.kid,
      alg: JWS_ALG,
      public_jwk: JSON.stringify(jwk),
      private_enc: keyring.seal(der, privateKeyAad(jwk.kid)),
      created_at: now,
    };
  } finally {
    der.fill(0);
  }
}

/**
 * Unseals a stored key. The public half is derived from the private one, never taken from the
 * `public_jwk` column: that column is not authenticated, and trusting it would let whoever can
 * write to the database publish a key of their own under our kid.
 */
function loadKey(row: SigningKeyRow, keyring: Keyring): LoadedKey {
  if (row.alg !== JWS_ALG) throw new Error(`signing key ${row.kid} has unsupported alg ${row.alg}`);
  let der: Buffer;
  try {
    der = keyring.open(row.private_enc, privateKeyAad(row.kid));
  } catch (err) {
    if (err instanceof DecryptError) {
      throw new DecryptError(`cannot load signing key ${row.kid}: ${err.message}`, { cause: err });
    }
    throw err;
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: der, format: "der", type: "pkcs8" });
  } finally {
    der.fill(0);
  }
  const publicKey = createPublicKey(privateKey);
  const jwk = publicJwkOf(publicKey);
  const stored = parseJson(row.public_jwk);
  if (jwk.kid !== row.kid || stored?.x !== jwk.x || stored?.y !== jwk.y) {
    throw new Error(`signing key ${row.kid} does not match its stored public key: the row was altered`);
  }
  return { kid: row.kid, privateKey, publicKey, jwk };
}

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** The public JWK as served in JWKS; `kid` is its RFC 7638 thumbprint. */
function publicJwkOf(publicKey: KeyObject): Record<string, string> & { kid: string; x: string; y: string } {
  const { crv, x, y } = publicKey.export({ format: "jwk" });
  if (crv !== "P-256" || typeof x !== "string" || typeof y !== "string") throw new Error("not a P-256 key");
  // RFC 7638: required members only, in lexicographic order, no whitespace.
  const kid = base64url.encode(
    createHash("sha256")
      .update(JSON.stringify({ crv, kty: "EC", x, y }))
      .digest(),
  );
  return { kty: "EC", crv, x, y, kid, alg: JWS_ALG, use: "sig" };
}
