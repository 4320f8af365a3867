import type { KeyEntry } from "../keys/key-entry.js";
import type { CheckedToken } from "./checked-token.js";
import { covers } from "./scopes.js";

export interface ScopeView {
  readonly scopes: readonly string[];
  readonly scopeSet: ReadonlySet<string>;
}

const memo = new WeakMap<CheckedToken, { key: KeyEntry; view: ScopeView }>();

/**
 * What a token may do now: its own scopes narrowed to what its client key holds today. Narrowing
 * a key's scopes narrows every token minted from it on the next request; widening the key never
 * widens a token. `agent:*` in a token held against a key narrowed to named agents keeps those
 * agents only.
 *
 * Remembered per verified token and key entry: an admin change replaces the key entry (the cache
 * is invalidated), so the hot path computes this once per token and key version.
 */
export function effectiveScopes(token: CheckedToken, key: KeyEntry): ScopeView {
  const hit = memo.get(token);
  if (hit !== undefined && hit.key === key) return hit.view;
  const out: string[] = [];
  let narrowed = false;
  for (const s of token.scopes) {
    if (covers(key.scopeSet, s)) {
      if (!out.includes(s)) out.push(s);
      continue;
    }
    narrowed = true;
    if (s === "agent:*") for (const k of key.scopes) if (k.startsWith("agent:") && !out.includes(k)) out.push(k);
  }
  const view: ScopeView = narrowed
    ? { scopes: out, scopeSet: new Set(out) }
    : { scopes: token.scopes, scopeSet: token.scopeSet };
  memo.set(token, { key, view });
  return view;
}
