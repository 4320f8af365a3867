/** Every form the SPEC names for a secret (raw, base64, base64url, hex in both cases, URL), and JSON escapes. */
export function encodings(secret: string): Record<string, string> {
  const raw = Buffer.from(secret, "utf8");
  return {
    raw: secret,
    base64: raw.toString("base64"),
    base64url: raw.toString("base64url"),
    hexLower: raw.toString("hex"),
    hexUpper: raw.toString("hex").toUpperCase(),
    url: encodeURIComponent(secret),
    json: JSON.stringify(secret).slice(1, -1),
  };
}
