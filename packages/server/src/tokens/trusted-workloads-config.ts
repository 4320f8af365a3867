import { SCOPE, SLUG } from "@keyward/sdk/names";
import { z } from "zod";
import { externalAlgorithms, jwksUri } from "./trusted-issuers-config.js";

// `trusted_workloads:` in the config file: one rule per workload identity that becomes an agent.
// config.ts validates the list with this schema; tokens/ owns the type (trusted-workloads.ts).

/** A claim's expected value: compared with `===`, so `"true"` is not `true` and `"A"` is not `"a"`. */
const claimValue = z.union([z.string().min(1).max(1024), z.number(), z.boolean()]);

export const trustedWorkloadSchema = z
  .object({
    /** The platform's issuer, compared exactly with the token's `iss` (e.g. the cluster's service-account issuer). */
    issuer: z.string().min(1),
    jwks_uri: jwksUri,
    /** The `aud` the platform token must carry (one of them, when a list): Keyward's, never the cluster API's. */
    audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    /** The agent the workload is: the minted token's `sub` is `agent:<agent>`. */
    agent: z.string().regex(SLUG, "must be an agent name (a lower-case slug)"),
    /** `sub` must equal this exactly, e.g. `system:serviceaccount:<namespace>:<service account>`. */
    subject: z.string().min(1).max(1024).optional(),
    /** Top-level claims that must each equal their value exactly, e.g. GitHub's `repository` and `ref`. */
    claims: z
      .record(z.string().min(1).max(256), claimValue)
      .refine((c) => Object.keys(c).length <= 32, "at most 32 claims")
      .optional(),
    /** The scopes the minted agent token carries (e.g. `agent:<name>` to call another agent through the gateway). */
    scopes: z.array(z.string().regex(SCOPE, "a scope has no spaces")).default([]),
    /** The longest a minted token lives, in seconds; never past the platform token's `exp` either. */
    token_lifetime_s: z.number().int().min(60).max(86_400).default(900),
    algorithms: externalAlgorithms,
  })
  .strict()
  // A rule with neither would make every token the issuer signs for this audience the agent.
  .refine((w) => w.subject !== undefined || (w.claims !== undefined && Object.keys(w.claims).length > 0), {
    message: "needs subject or claims: a rule must name which workload it is, exactly",
  });

export type TrustedWorkloadConfig = z.infer<typeof trustedWorkloadSchema>;

/**
 * Problems across the list, for config.ts: an issuer both in `trusted_issuers` (its tokens become
 * users) and in `trusted_workloads` (agents) would let one token be read either way, so it is
 * refused; two rules that name the same workload (issuer, subject, claims) for different agents too.
 */
export function workloadListProblem(
  workloads: readonly TrustedWorkloadConfig[],
  userIssuers: readonly { issuer: string }[],
): string | undefined {
  const users = new Set(userIssuers.map((i) => i.issuer));
  const seen = new Map<string, string>();
  for (const [i, w] of workloads.entries()) {
    if (users.has(w.issuer)) {
      return `trusted_workloads[${i}].issuer is also in trusted_issuers: an issuer's tokens are users or agents, not both`;
    }
    const claims = Object.entries(w.claims ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const id = JSON.stringify([w.issuer, w.subject ?? null, claims]);
    const other = seen.get(id);
    if (other !== undefined && other !== w.agent) {
      return `trusted_workloads[${i}]: the same workload is already agent ${other}`;
    }
    seen.set(id, w.agent);
  }
  return undefined;
}
