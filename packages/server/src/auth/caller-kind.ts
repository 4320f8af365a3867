import { KeywardError } from "../errors.js";
import type { Caller } from "./caller-auth.js";

/**
 * The agent behind a caller, for the endpoints only an agent may use (its credentials, event
 * stream, egress, tools, audit events): a consumer or a user has no grants. `what` names the
 * endpoint in the refusal.
 */
export function agentOf(caller: Caller, what = "read its credentials"): string {
  if (!caller.principal.startsWith("agent:")) {
    throw new KeywardError("forbidden", `only an agent's own key or access token can ${what}`);
  }
  return caller.principal.slice("agent:".length);
}
