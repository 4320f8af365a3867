import { createChainVerifier } from "./audit-chain.js";
import type { AuditChainState, AuditCheckpoint } from "./audit-checkpoints.js";
import type { AuditRow } from "./audit-store.js";

/**
 * What `GET /admin/v1/audit/verify` reports (SPEC §3). `first_broken_seq` is always the first seq
 * that is not as it should be: an edited row, a missing row, or the first row past a truncated end.
 * - `altered`: the rows do not link (an edit, a deletion in the middle, a reordering);
 * - `truncated`: the rows link, but end before a row known to exist: this process's own anchor,
 *   the given checkpoint, or the last legacy row (the chain switched to keyed links after it);
 * - `rolled_back`: the rows link and reach the anchor's seq, but hold another hash there: the
 *   database was put back to an older state and written on from it.
 */
export type AuditVerifyResult =
  | { ok: true; count: number; head: string }
  | {
      ok: false;
      reason: "altered" | "truncated" | "rolled_back";
      first_broken_seq: number;
      count: number;
      /** For truncated/rolled_back: which anchor disagreed. */
      anchor?: "process" | "checkpoint" | "keyed_from";
    };

const PAGE = 1000;

export async function verifyAuditChain(deps: {
  page: (afterSeq: number, limit: number) => Promise<AuditRow[]>;
  chain: AuditChainState | undefined;
  checkpoint?: AuditCheckpoint | undefined;
}): Promise<AuditVerifyResult> {
  const anchors: Array<{ kind: "process" | "checkpoint" | "keyed_from"; seq: number; head?: string }> = [];
  const own = deps.chain?.anchor();
  if (own) anchors.push({ kind: "process", ...own });
  if (deps.checkpoint) anchors.push({ kind: "checkpoint", ...deps.checkpoint });
  const keyedFrom = deps.chain?.keying?.keyedFrom;
  if (keyedFrom !== undefined && keyedFrom > 1) anchors.push({ kind: "keyed_from", seq: keyedFrom - 1 });

  const verifier = createChainVerifier(
    deps.chain?.keying,
    anchors.map((a) => a.seq),
  );
  let after = 0;
  for (;;) {
    const rows = await deps.page(after, PAGE);
    let stopped = false;
    for (const row of rows) {
      if (!verifier.push(row)) {
        stopped = true;
        break;
      }
    }
    const last = rows[rows.length - 1];
    if (stopped || !last || rows.length < PAGE) break;
    after = last.seq;
  }
  const v = verifier.result();
  if (!v.ok) return { ok: false, reason: "altered", first_broken_seq: v.first_broken_seq, count: v.count };
  for (const a of anchors) {
    if (v.count < a.seq) {
      return { ok: false, reason: "truncated", first_broken_seq: v.count + 1, count: v.count, anchor: a.kind };
    }
    if (a.head !== undefined && verifier.hashAt(a.seq) !== a.head) {
      return { ok: false, reason: "rolled_back", first_broken_seq: a.seq, count: v.count, anchor: a.kind };
    }
  }
  // Only a chain that checked out becomes this process's anchor.
  if (v.count > 0) deps.chain?.witness({ seq: v.count, head: v.head });
  return v;
}
