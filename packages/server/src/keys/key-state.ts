import type { KeyChanges, KeyRow } from "./keys-store.js";

/**
 * The key lifecycle, written once. Every mutating admin route asks `decideKeyAction` before it
 * writes, inside the transaction that holds the row, so a refusal leaves the row untouched.
 *
 *   active ⇄ frozen               freeze / unfreeze (each idempotent on its own target state)
 *   active → rotated              rotate: the row gets `rotated_to` and expires at the grace end
 *   active | frozen | rotated → revoked
 *
 * `revoked` and `rotated` are terminal: such a key never becomes usable again. A rotated key's
 * live configuration belongs to its successor, so the only change it accepts, besides revoke, is a
 * shorter (non-null, not later) expiry: ending the grace sooner. Freeze and unfreeze of a rotated
 * key are refused too: unfreezing is how a frozen key comes back, and a retired key must not come
 * back; revoke ends a grace early, for good.
 *
 * "Expired" is not a state here: an active key past its `expires_at` may still be given a new
 * expiry by an admin (that is what renewing a key is), but it cannot be rotated.
 */
export type KeyState = "active" | "frozen" | "revoked" | "rotated";

export type KeyAction =
  | { kind: "patch"; changes: KeyChanges }
  | { kind: "freeze" }
  | { kind: "unfreeze" }
  | { kind: "revoke" }
  | { kind: "rotate" };

/** Why an action was refused; every reason is answered as 409 `conflict`. */
export type KeyStateReason = "key_revoked" | "key_frozen" | "key_rotated" | "key_expired";

export type KeyTransition = { ok: true } | { ok: false; code: "conflict"; reason: KeyStateReason; message: string };

export function keyState(row: Pick<KeyRow, "status" | "rotated_to">): KeyState {
  if (row.status === "revoked") return "revoked";
  if (row.rotated_to !== null) return "rotated";
  return row.status;
}

const deny = (reason: KeyStateReason, message: string): KeyTransition => ({
  ok: false,
  code: "conflict",
  reason,
  message,
});

export function decideKeyAction(
  row: Pick<KeyRow, "status" | "rotated_to" | "expires_at">,
  action: KeyAction,
  now: number,
): KeyTransition {
  const state = keyState(row);
  if (action.kind === "revoke") return { ok: true }; // from every state; idempotent when revoked
  if (state === "revoked") return deny("key_revoked", "key is revoked");
  if (state === "rotated") {
    if (action.kind === "patch" && shortensOnly(row.expires_at, action.changes)) return { ok: true };
    const why =
      action.kind === "patch"
        ? "only a shorter expires_at may be set on it"
        : "its successor holds the live configuration";
    return deny("key_rotated", `key was rotated to ${row.rotated_to}: ${why}`);
  }
  if (action.kind === "rotate") {
    if (state === "frozen") return deny("key_frozen", "key is frozen");
    if (row.expires_at !== null && row.expires_at <= now) return deny("key_expired", "key has expired");
  }
  return { ok: true };
}

/** True when the patch touches nothing but the expiry and moves it no later than it is. */
function shortensOnly(current: number | null, changes: KeyChanges): boolean {
  const fields = Object.keys(changes);
  if (fields.length !== 1 || fields[0] !== "expires_at") return false;
  const next = changes.expires_at;
  if (next === undefined || next === null) return false;
  return current === null || next <= current;
}
