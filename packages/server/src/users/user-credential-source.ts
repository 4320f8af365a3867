/**
 * What the tool paths (`POST /v1/tools/credentials`, the MCP gateway) need from the per-user
 * credential store: a user's current values by name, and word when they change on any replica.
 */
export type UserCredentialLookup =
  | { ok: true; values: Record<string, string> }
  /** `missing` is the first requested name the user has not set. */
  | { ok: false; missing: string };

export interface UserCredentialSource {
  /** `user` is the id without the `user:` prefix. All or nothing. Throws only on infrastructure failure. */
  resolve(user: string, names: readonly string[]): Promise<UserCredentialLookup>;
  /** Called (on every replica) after any of this user's credentials was written or deleted. */
  onChange(listener: (user: string) => void): void;
}
