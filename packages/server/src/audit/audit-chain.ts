import { createHash } from "node:crypto";
import type { IntegrityKeys } from "../crypto/integrity-keys.js";

/**
 * The audit hash chain. Invariants:
 * - seq is dense from 1; row n links to row n-1 by `prev_hash`, row 1 to GENESIS_HASH;
 * - a row's link covers `prev_hash + "\n" + canonicalEvent(row)`: every column except the two
 *   hashes, with `time` as stored (epoch ms) and `details` as the exact stored JSON text, so any
 *   byte changed in any column is detected;
 * - two link rules, chosen by seq alone (never by anything else in the row, so a row cannot be
 *   downgraded): rows before `keyedFrom` (written before keyed links existed) use the legacy
 *   `sha256hex(...)`; rows from `keyedFrom` on use HMAC-SHA256 under the audit-chain subkey
 *   (crypto/integrity-keys.ts), which database access alone cannot recompute. `keyedFrom` is fixed
 *   once per database, bound to the integrity root (crypto/integrity-root.ts).
 * Changing what `canonicalEvent` covers breaks every existing chain: add a version, don't edit.
 */
export const GENESIS_HASH = "0".repeat(64);

/** The columns a hash covers. Absent values are null, as the row stores them. */
export interface ChainedFields {
  seq: number;
  time: number;
  actor: string;
  action: string;
  target: string | null;
  outcome: string;
  code: string | null;
  ip: string | null;
  request_id: string | null;
  details: string | null;
}

export interface ChainRow extends ChainedFields {
  prev_hash: string;
  hash: string;
}

/**
 * JSON with object keys sorted (by UTF-16 code units, as RFC 8785) at every depth, so equal values
 * serialize to equal bytes whatever order their keys were built in. Like JSON.stringify, it drops
 * undefined/function members and writes non-finite numbers as null; a bigint throws.
 */
export function canonicalJson(value: unknown): string {
  return write(value) ?? "null";
}

function write(value: unknown): string | undefined {
  let v = value;
  if (typeof v === "object" && v !== null && typeof (v as { toJSON?: unknown }).toJSON === "function") {
    v = (v as { toJSON: () => unknown }).toJSON();
  }
  switch (typeof v) {
    case "string":
    case "boolean":
      return JSON.stringify(v);
    case "number":
      return Number.isFinite(v) ? JSON.stringify(v) : "null";
    case "bigint":
      throw new TypeError("canonicalJson: bigint is not JSON");
    case "object": {
      if (v === null) return "null";
      if (Array.isArray(v)) return `[${v.map((x) => write(x) ?? "null").join(",")}]`;
      const obj = v as Record<string, unknown>;
      const parts: string[] = [];
      for (const key of Object.keys(obj).sort()) {
        const s = write(obj[key]);
        if (s !== undefined) parts.push(`${JSON.stringify(key)}:${s}`);
      }
      return `{${parts.join(",")}}`;
    }
    default:
      return undefined;
  }
}

/** The hashed form of a row. Fields are picked one by one so a new column never slips in. */
export function canonicalEvent(f: ChainedFields): string {
  return canonicalJson({
    seq: f.seq,
    time: f.time,
    actor: f.actor,
    action: f.action,
    target: f.target,
    outcome: f.outcome,
    code: f.code,
    ip: f.ip,
    request_id: f.request_id,
    details: f.details,
  });
}

/** The legacy (unkeyed) link: what every row before `keyedFrom` holds. */
export function chainHash(prevHash: string, f: ChainedFields): string {
  return createHash("sha256")
    .update(`${prevHash}\n${canonicalEvent(f)}`, "utf8")
    .digest("hex");
}

/** Where the chain switches to keyed links, and the keys. Absent: every row is legacy (tests only). */
export interface ChainKeying {
  keyedFrom: number;
  keys: IntegrityKeys;
}

/** The link a row must hold: keyed from `keyedFrom` on, legacy before it. */
export function linkHash(prevHash: string, f: ChainedFields, keying: ChainKeying | undefined): string {
  if (keying === undefined || f.seq < keying.keyedFrom) return chainHash(prevHash, f);
  return keying.keys.mac("auditChain", `${prevHash}\n${canonicalEvent(f)}`);
}

export type ChainVerdict =
  | { ok: true; count: number; head: string }
  | { ok: false; first_broken_seq: number; count: number };

/**
 * Walks rows in seq order (fed page by page) and stops at the first break. `first_broken_seq` is
 * the first seq where the stored chain differs from an intact one: an edited row's own seq, or,
 * for a deleted row, the missing seq. `count` is how many rows verified intact before it.
 * A truncated tail is not detectable from the rows alone: audit-verify.ts compares with anchors
 * kept elsewhere (the process's own head, checkpoints), whose seqs are passed as `watch`.
 */
export function createChainVerifier(keying?: ChainKeying, watch: readonly number[] = []) {
  const watched = new Map<number, string>();
  let expectedSeq = 1;
  let prev = GENESIS_HASH;
  let count = 0;
  let broken: number | undefined;
  return {
    /** Checks the next row; false once the chain is broken (later rows are ignored). */
    push(row: ChainRow): boolean {
      if (broken !== undefined) return false;
      const seq = Number(row.seq);
      if (seq !== expectedSeq) broken = expectedSeq;
      else if (row.prev_hash !== prev || linkHash(prev, { ...row, seq }, keying) !== row.hash) broken = seq;
      if (broken !== undefined) return false;
      if (watch.includes(seq)) watched.set(seq, row.hash);
      prev = row.hash;
      expectedSeq++;
      count++;
      return true;
    },
    /** The verified hash of a watched seq, if the chain reached it intact. */
    hashAt(seq: number): string | undefined {
      return watched.get(seq);
    },
    result(): ChainVerdict {
      return broken === undefined ? { ok: true, count, head: prev } : { ok: false, first_broken_seq: broken, count };
    },
  };
}
