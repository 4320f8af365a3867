import { createHash } from "node:crypto";

/**
 * The audit hash chain. Invariants:
 * - seq is dense from 1; row n links to row n-1 by `prev_hash`, row 1 to GENESIS_HASH;
 * - `hash = sha256hex(prev_hash + "\n" + canonicalEvent(row))`, over every column except the two
 *   hashes, with `time` as stored (epoch ms) and `details` as the exact stored JSON text, so a
 *   verifier recomputes it from the row alone and any byte changed in any column is detected.
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

export function chainHash(prevHash: string, f: ChainedFields): string {
  return createHash("sha256")
    .update(`${prevHash}\n${canonicalEvent(f)}`, "utf8")
    .digest("hex");
}

export type ChainVerdict =
  | { ok: true; count: number; head: string }
  | { ok: false; first_broken_seq: number; count: number };

/**
 * Walks rows in seq order (fed page by page) and stops at the first break. `first_broken_seq` is
 * the first seq where the stored chain differs from an intact one: an edited row's own seq, or,
 * for a deleted row, the missing seq. `count` is how many rows verified intact before it.
 * A truncated tail is not detectable from the rows alone: compare `head` with a copy kept elsewhere.
 */
export function createChainVerifier() {
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
      else if (row.prev_hash !== prev || chainHash(prev, { ...row, seq }) !== row.hash) broken = seq;
      if (broken !== undefined) return false;
      prev = row.hash;
      expectedSeq++;
      count++;
      return true;
    },
    result(): ChainVerdict {
      return broken === undefined ? { ok: true, count, head: prev } : { ok: false, first_broken_seq: broken, count };
    },
  };
}
