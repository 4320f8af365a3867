import type { AuthResult, CallerAuth } from "../auth/caller-auth.js";
import { KeywardError } from "../errors.js";
import type { OutcomeSurface, OutcomeTap } from "./outcomes.js";

/**
 * Caller authentication that reports each decision into the outcome tap, for a surface other than
 * the gateway (which records its own, with the agent addressed): `require` (credential reads,
 * egress, tools, MCP) and `key` (a key in a body at the token endpoints). Allowed once the caller
 * is let in, or the denial's code with the key it names. The decision itself stays caller-auth's;
 * this only reports it, so usage and the detectors see every surface without routes recording by
 * hand. A route's own later refusal (a credential not granted) is not an authentication outcome.
 */
export function withOutcomes(
  auth: CallerAuth,
  outcomes: OutcomeTap,
  clock: { now(): number },
  surface: OutcomeSurface,
): CallerAuth {
  const recordKey = (r: AuthResult): AuthResult => {
    const key = r.ok ? r.caller.key : r.key;
    outcomes.record({
      ...{ at: clock.now(), surface, code: r.ok ? "allowed" : r.code },
      ...(r.ip !== "" ? { ip: r.ip } : {}),
      ...(key !== undefined ? { keyId: key.id, owner: key.owner } : {}),
    });
    return r;
  };
  return {
    ...auth,
    key(secret, ip) {
      const r = auth.key(secret, ip);
      return r instanceof Promise ? r.then(recordKey) : recordKey(r);
    },
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
