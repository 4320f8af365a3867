import { randomUUID } from "node:crypto";
import { loadKeyring } from "../src/boot.js";
import { systemClock } from "../src/clock.js";
import { createSigningKeys } from "../src/crypto/signing-keys.js";
import { openStore } from "../src/store/open-store.js";
import type { TestServer } from "./server.js";

export interface AccessTokenMinter {
  /** The running server's issuer (its `iss`, and the `aud` of a user's Keyward token). */
  issuer: string;
  /**
   * An access token signed with the server's own active signing key: `iss`, `iat`, `exp` (5 min),
   * `jti` filled in, the rest from `claims` (`sub`, `aud`, `client_id`, `scope` at least).
   */
  mint(claims: Record<string, unknown>): string;
}

/**
 * Tokens of shapes no endpoint of the running server mints yet, or mints only after a browser
 * sign-in (an MCP client's resource-bound token, RFC 8707): read the server's signing keys from
 * its store with its master key, as a second replica would, and sign with them. The server then
 * verifies them as its own.
 */
export async function accessTokenMinter(kw: TestServer): Promise<AccessTokenMinter> {
  const meta = (await (await fetch(`${kw.url}/.well-known/oauth-authorization-server`)).json()) as { issuer: string };
  const db = await openStore(kw.config.database_url, kw.config.data_dir);
  try {
    const signing = createSigningKeys({ db, keyring: loadKeyring(kw.config, () => {}), clock: systemClock });
    await signing.init();
    return {
      issuer: meta.issuer,
      mint(claims) {
        const now = Math.floor(Date.now() / 1000);
        return signing.sign({ iss: meta.issuer, iat: now, exp: now + 300, jti: randomUUID(), ...claims });
      },
    };
  } finally {
    await db.close();
  }
}
