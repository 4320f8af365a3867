import type { OutcomeTap } from "../anomaly/outcomes.js";
import type { AuthResult, CallerAuth } from "../auth/caller-auth.js";

/**
 * The token endpoints' caller authentication, recording each key presented to them (an
 * `api_key` grant, client credentials, an actor key) into the outcome tap as surface `token`:
 * allowed, or the denial's code with the key it names. So usage counts token requests and the
 * detectors see them — a canary key tried at `/v1/auth/token` is refused as an unknown key and
 * alerted like anywhere else. The decision stays caller-auth's.
 */
export function withTokenOutcomes(auth: CallerAuth, outcomes: OutcomeTap, now: () => number): CallerAuth {
  const record = (r: AuthResult): AuthResult => {
    const key = r.ok ? r.caller.key : r.key;
    outcomes.record({
      at: now(),
      surface: "token",
      code: r.ok ? "allowed" : r.code,
      ...(r.ip !== "" ? { ip: r.ip } : {}),
      ...(key !== undefined ? { keyId: key.id, owner: key.owner } : {}),
    });
    return r;
  };
  return {
    ...auth,
    key(secret, ip) {
      const r = auth.key(secret, ip);
      return r instanceof Promise ? r.then(record) : record(r);
    },
  };
}
