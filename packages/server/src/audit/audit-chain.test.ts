import { describe, expect, it } from "vitest";
import { type ChainRow, canonicalJson, chainHash, createChainVerifier, GENESIS_HASH } from "./audit-chain.js";

function buildChain(n: number): ChainRow[] {
  const rows: ChainRow[] = [];
  let prev = GENESIS_HASH;
  for (let seq = 1; seq <= n; seq++) {
    const fields = {
      seq,
      time: 1_767_225_600_000 + seq,
      actor: "admin:root",
      action: "key.create",
      target: `key_${seq}`,
      outcome: "success",
      code: null,
      ip: "127.0.0.1",
      request_id: `req-${seq}`,
      details: canonicalJson({ n: seq }),
    };
    const hash = chainHash(prev, fields);
    rows.push({ ...fields, prev_hash: prev, hash });
    prev = hash;
  }
  return rows;
}

function verify(rows: ChainRow[]) {
  const v = createChainVerifier();
  for (const r of rows) if (!v.push(r)) break;
  return v.result();
}

describe("canonicalJson", () => {
  it("sorts keys at every depth, whatever order they were built in", () => {
    const a = canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: "x" } });
    const b = canonicalJson({ a: { c: "x", d: [1, { y: 2, z: 1 }] }, b: 1 });
    expect(a).toBe(b);
    expect(a).toBe('{"a":{"c":"x","d":[1,{"y":2,"z":1}]},"b":1}');
  });

  it("follows JSON.stringify for undefined, non-finite numbers and dates", () => {
    expect(canonicalJson({ u: undefined, n: Number.NaN, arr: [undefined], d: new Date(0) })).toBe(
      '{"arr":[null],"d":"1970-01-01T00:00:00.000Z","n":null}',
    );
  });

  it("refuses a bigint rather than inventing a form for it", () => {
    expect(() => canonicalJson({ n: 1n })).toThrow(TypeError);
  });
});

describe("chainHash", () => {
  it("is sha256 hex of prev_hash, a newline and the canonical event", () => {
    const [row] = buildChain(1);
    expect(row?.prev_hash).toBe("0".repeat(64));
    expect(row?.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(chainHash(GENESIS_HASH, { ...row!, time: row!.time + 1 })).not.toBe(row?.hash);
  });

  it("covers every field, so a null and an empty string differ", () => {
    const [row] = buildChain(1);
    expect(chainHash(GENESIS_HASH, { ...row!, code: "" })).not.toBe(chainHash(GENESIS_HASH, { ...row!, code: null }));
  });
});

describe("createChainVerifier", () => {
  it("accepts an intact chain and reports its head", () => {
    const rows = buildChain(5);
    expect(verify(rows)).toEqual({ ok: true, count: 5, head: rows[4]?.hash });
  });

  it("accepts an empty chain with the genesis head", () => {
    expect(verify([])).toEqual({ ok: true, count: 0, head: GENESIS_HASH });
  });

  it("finds an edited field at that row", () => {
    const rows = buildChain(5);
    rows[2] = { ...rows[2]!, actor: "admin:someone-else" };
    expect(verify(rows)).toEqual({ ok: false, first_broken_seq: 3, count: 2 });
  });

  it("finds an edit whose hash was recomputed at the next row's link", () => {
    const rows = buildChain(5);
    const edited = { ...rows[2]!, outcome: "denied" };
    rows[2] = { ...edited, hash: chainHash(edited.prev_hash, edited) };
    expect(verify(rows)).toEqual({ ok: false, first_broken_seq: 4, count: 3 });
  });

  it("names the missing seq when a row was deleted", () => {
    const rows = buildChain(5);
    rows.splice(1, 1);
    expect(verify(rows)).toEqual({ ok: false, first_broken_seq: 2, count: 1 });
    expect(verify(buildChain(3).slice(1))).toEqual({ ok: false, first_broken_seq: 1, count: 0 });
  });

  it("finds two rows that swapped places", () => {
    const rows = buildChain(5);
    const third = rows[2]!;
    const fourth = rows[3]!;
    rows[2] = { ...fourth, seq: 3 };
    rows[3] = { ...third, seq: 4 };
    expect(verify(rows)).toEqual({ ok: false, first_broken_seq: 3, count: 2 });
  });
});
