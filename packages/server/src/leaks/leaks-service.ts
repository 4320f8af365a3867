import { createHash } from "node:crypto";
import type { Actor } from "../admin/admin-context.js";
import type { AlertRaiser } from "../anomaly/alert-types.js";
import type { AuditSink } from "../audit/audit-sink.js";
import type { Clock } from "../clock.js";
import { isWellFormed } from "../crypto/secret-format.js";
import { KeywardError } from "../errors.js";
import type { KeysService } from "../keys/keys-service.js";
import type { Logger } from "../ops/logger.js";
import type { LeaksStore } from "./leaks-store.js";

export interface LeakEntry {
  token: string;
  type: string;
  url?: string | undefined;
  source?: string | undefined;
}

export interface LeakVerdict {
  token_hash: string;
  token_type: string;
  label: "true_positive" | "false_positive";
}

/** The partner format's token hash: SHA-256 of the raw token, hex. Identifies a token without echoing it. */
export const tokenHash = (token: string): string => createHash("sha256").update(token).digest("hex");

/**
 * Leaked-key reports (issue 13, item 5). A report already verified by its signature is acted on
 * once (its digest is remembered for the replay window): each reported token that is a Keyward
 * key is revoked (or frozen) through the keys service (audited, announced as a webhook, dropped
 * on every replica) and raises a critical `leak_report` alert. Anything else is a false positive,
 * rejected by shape and checksum before any store read.
 */
export function createLeaksService(deps: {
  keys: Pick<KeysService, "lookup" | "revoke" | "freeze">;
  alerts: AlertRaiser;
  audit: Pick<AuditSink, "record">;
  store: LeaksStore;
  clock: Clock;
  logger: Pick<Logger, "warn">;
  action: "revoke" | "freeze";
  replayWindowS: number;
}) {
  const { keys, clock } = deps;

  async function act(actor: Actor, entry: LeakEntry): Promise<LeakVerdict> {
    const verdict = (label: LeakVerdict["label"]): LeakVerdict => ({
      token_hash: tokenHash(entry.token),
      token_type: entry.type,
      label,
    });
    if (!isWellFormed(entry.token, "kwk")) return verdict("false_positive");
    const key = await keys.lookup(entry.token);
    if (key === null || key === "malformed") return verdict("false_positive");
    let done: "revoked" | "frozen" | "already_revoked" = deps.action === "freeze" ? "frozen" : "revoked";
    if (key.status === "revoked") done = "already_revoked";
    else if (deps.action === "freeze") {
      try {
        await keys.freeze(actor, key.id, { reason: "leak_report" });
      } catch (err) {
        // A key whose state refuses a freeze (rotated) must still stop working: revoke it.
        if (!(err instanceof KeywardError)) throw err;
        await keys.revoke(actor, key.id);
        done = "revoked";
      }
    } else await keys.revoke(actor, key.id);
    await deps.alerts.raise({
      rule: "leak_report",
      severity: "critical",
      keyId: key.id,
      dedupKey: key.id,
      evidence: {
        action: done,
        prefix: key.prefix,
        owner: key.owner,
        url: entry.url ?? null,
        source: entry.source ?? null,
      },
    });
    return verdict("true_positive");
  }

  return {
    /**
     * Acts on a verified report. `digest` identifies it; a digest seen within the replay window
     * is refused with 401 and nothing is done.
     */
    async report(reporter: string, digest: string, entries: readonly LeakEntry[]): Promise<LeakVerdict[]> {
      const now = clock.now();
      await deps.store.prune(now - deps.replayWindowS * 1000);
      if (!(await deps.store.remember(digest, now))) {
        throw new KeywardError("unauthorized", "this report was already received");
      }
      const actor: Actor = { principal: `leak-report:${reporter}` };
      try {
        const verdicts: LeakVerdict[] = [];
        for (const entry of entries) verdicts.push(await act(actor, entry));
        const found = verdicts.filter((v) => v.label === "true_positive").length;
        await deps.audit.record({
          actor: actor.principal,
          action: "leak.report",
          target: `report:${digest.slice(0, 16)}`,
          outcome: "success",
          details: { entries: entries.length, true_positives: found, action: deps.action },
        });
        return verdicts;
      } catch (err) {
        // Not acted on in full: let the reporter's retry through (what was done stays done).
        await deps.store.forget(digest).catch(() => {});
        throw err;
      }
    },
  };
}

export type LeaksService = ReturnType<typeof createLeaksService>;
