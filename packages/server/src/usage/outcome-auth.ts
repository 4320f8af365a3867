import type { OutcomeSurface, OutcomeTap } from "../anomaly/outcomes.js";
import type { CallerAuth } from "../auth/caller-auth.js";
import type { Clock } from "../clock.js";
import { KeywardError } from "../errors.js";

/**
 * The caller authentication a surface other than the gateway uses (credential reads, egress,
 * tools, MCP), recording each `require` into the outcome tap: allowed once the caller is let in,
 * or the denial's code. The decision itself stays caller-auth's; this only reports it, so usage
 * and the detectors see these surfaces without each route recording by hand. A route's own later
 * refusal (a credential not granted) is not an authentication outcome and is not recorded here.
 */
export function withOutcomes(
  auth: CallerAuth,
  outcomes: OutcomeTap,
  clock: Clock,
  surface: OutcomeSurface,
): CallerAuth {
  return {
    ...auth,
    async require(ctx, place) {
      const ip = () => auth.requestIp({ headers: ctx.req.headers, peerIp: ctx.peerIp });
      try {
        const caller = await auth.require(ctx, place);
        const agent = caller.principal.startsWith("agent:") ? caller.principal.slice("agent:".length) : undefined;
        outcomes.record({
          ...{ at: clock.now(), surface, code: "allowed", keyId: caller.keyId, owner: caller.key.owner, ip: ip() },
          ...(agent !== undefined ? { agent } : {}),
        });
        return caller;
      } catch (err) {
        if (err instanceof KeywardError) {
          outcomes.record({
            ...{ at: clock.now(), surface, code: err.code, ip: ip() },
            ...(ctx.keyId !== undefined ? { keyId: ctx.keyId } : {}),
          });
        }
        throw err;
      }
    },
  };
}
