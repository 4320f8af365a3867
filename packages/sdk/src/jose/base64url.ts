/**
 * base64url without padding (RFC 4648 §5), as JWS uses it.
 *
 * Node's own decoder is lenient: it skips characters outside the alphabet and ignores a dangling
 * character and non-zero trailing bits, so two different strings can decode to the same bytes.
 * Tokens are attacker input, so `decode` accepts only the canonical encoding.
 *
 * @example
 * ```ts
 * import { base64url } from "@keyward/sdk/jose";
 *
 * base64url.encode("hi"); // "aGk"
 * base64url.decode("aGl"); // undefined: non-zero trailing bits, not the canonical form
 * ```
 */
const ALPHABET = /^[A-Za-z0-9_-]*$/;
const utf8 = new TextDecoder("utf-8", { fatal: true });

export const base64url = {
  encode(input: Buffer | Uint8Array | string): string {
    return (typeof input === "string" ? Buffer.from(input, "utf8") : Buffer.from(input)).toString("base64url");
  },

  /** Strictly decodes base64url without padding; `undefined` for anything else. */
  decode(input: string): Buffer | undefined {
    if (input.length % 4 === 1 || !ALPHABET.test(input)) return undefined;
    const bytes = Buffer.from(input, "base64url");
    // Rejects non-zero trailing bits, so each byte string has exactly one encoding.
    if (bytes.toString("base64url") !== input) return undefined;
    return bytes;
  },
};

/**
 * A strict-base64url segment holding a UTF-8 JSON object, or `undefined` for anything else.
 *
 * @example
 * ```ts
 * import { decodeJsonObject } from "@keyward/sdk/jose";
 *
 * decodeJsonObject("eyJhIjoxfQ"); // { a: 1 }
 * decodeJsonObject("WzFd"); // undefined: `[1]` is not an object
 * ```
 */
export function decodeJsonObject(segment: string): Record<string, unknown> | undefined {
  const bytes = base64url.decode(segment);
  if (!bytes || bytes.length === 0) return undefined;
  try {
    const value: unknown = JSON.parse(utf8.decode(bytes));
    if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
    return value as Record<string, unknown>;
  } catch {
    // The parser's message quotes the input, and the input is part of a token: drop it.
    return undefined;
  }
}
