/**
 * base64url without padding (RFC 4648 §5), as JWS uses it.
 *
 * Node's own decoder is lenient: it skips characters outside the alphabet and ignores a dangling
 * character, so two different strings can decode to the same bytes. Tokens are attacker input, so
 * `decode` accepts only the canonical alphabet and lengths and answers `undefined` otherwise.
 */
const ALPHABET = /^[A-Za-z0-9_-]*$/;

export const base64url = {
  encode(input: Buffer | Uint8Array | string): string {
    return (typeof input === "string" ? Buffer.from(input, "utf8") : Buffer.from(input)).toString("base64url");
  },

  /** Strictly decodes base64url without padding; `undefined` for anything else. */
  decode(input: string): Buffer | undefined {
    if (!ALPHABET.test(input) || input.length % 4 === 1) return undefined;
    const bytes = Buffer.from(input, "base64url");
    // Rejects non-zero trailing bits, so each byte string has exactly one encoding.
    if (bytes.toString("base64url") !== input) return undefined;
    return bytes;
  },
};
