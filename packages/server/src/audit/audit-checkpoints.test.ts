import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createIntegrityKeys } from "../crypto/integrity-keys.js";
import { createLogger } from "../ops/logger.js";
import { createAuditChainState, type SignedCheckpoint, startAuditCheckpoints } from "./audit-checkpoints.js";

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { lines, logger: createLogger({ level: "info", destination }) };
}

describe("audit checkpoints", () => {
  const keys = createIntegrityKeys(Buffer.alloc(32, 9));

  it("keeps the highest witnessed row as the anchor", () => {
    const chain = createAuditChainState({ keyedFrom: 1, keys });
    expect(chain.anchor()).toBeUndefined();
    chain.witness({ seq: 5, head: "a".repeat(64) });
    chain.witness({ seq: 3, head: "b".repeat(64) });
    expect(chain.anchor()).toEqual({ seq: 5, head: "a".repeat(64) });
  });

  it("emits a moved anchor once, as one info line with seq, head and MAC, and at stop", async () => {
    const { lines, logger } = capture();
    const chain = createAuditChainState({ keyedFrom: 1, keys });
    const sent: SignedCheckpoint[] = [];
    const cp = startAuditCheckpoints({
      chain,
      logger,
      intervalMs: 3_600_000,
      send: async (c) => {
        sent.push(c);
      },
    });
    expect(cp.emit()).toBeUndefined();
    chain.witness({ seq: 7, head: "c".repeat(64) });
    const c = cp.emit();
    expect(cp.emit()).toBeUndefined(); // unchanged: not repeated
    chain.witness({ seq: 8, head: "d".repeat(64) });
    cp.stop();
    await new Promise((r) => setImmediate(r));
    expect(c && chain.checkpointMacValid(c)).toBe(true);
    expect(lines.map((l) => [l.level, l.msg, (l.audit_checkpoint as { seq: number }).seq])).toEqual([
      ["info", "audit checkpoint", 7],
      ["info", "audit checkpoint", 8],
    ]);
    expect(sent.map((s) => s.seq)).toEqual([7, 8]);
  });

  it("a checkpoint made under another root does not verify", () => {
    const ours = createAuditChainState({ keyedFrom: 1, keys });
    const theirs = createAuditChainState({ keyedFrom: 1, keys: createIntegrityKeys(Buffer.alloc(32, 10)) });
    theirs.witness({ seq: 1, head: "e".repeat(64) });
    expect(ours.checkpointMacValid(theirs.checkpoint()!)).toBe(false);
  });
});
