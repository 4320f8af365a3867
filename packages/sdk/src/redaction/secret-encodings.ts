/**
 * The byte strings under which a secret can leave an upstream or a tool: the secret itself and the
 * encodings services and libraries commonly wrap it in (SPEC §6, §7: raw, base64, URL-encoded, hex).
 * Escapes that leave most characters as they are (URL, JSON, HTML) are not listed here: the
 * scanner matches these patterns in the text with each scheme undone (scanner.ts).
 *
 * Base64 is the subtle one: a secret inside a longer base64 text (`Basic base64(user:secret)`, a
 * JSON blob encoded whole) is encoded at one of three alignments, each giving different characters.
 * For each alignment we keep the characters that depend on the secret's bytes only (the "core"),
 * so the secret is found wherever it sits in the encoded text.
 */

/** Derived patterns shorter than this are left out: they would match ordinary text. */
const MIN_DERIVED = 8;

export function secretEncodings(secret: string): Buffer[] {
  const raw = Buffer.from(secret, "utf8");
  const out = new Map<string, Buffer>();
  const add = (b: Buffer, derived: boolean) => {
    if (b.length === 0 || (derived && b.length < MIN_DERIVED)) return;
    out.set(b.toString("latin1"), b);
  };
  add(raw, false);

  // Whole-value encodings: as a service would send the secret alone.
  add(Buffer.from(raw.toString("base64"), "latin1"), false);
  add(Buffer.from(raw.toString("base64url"), "latin1"), false);
  add(Buffer.from(raw.toString("hex"), "latin1"), false);
  add(Buffer.from(raw.toString("hex").toUpperCase(), "latin1"), false);

  // Inside longer base64 text, at each of the three alignments.
  for (let k = 0; k < 3; k++) {
    add(base64Core(raw, k, "base64"), true);
    add(base64Core(raw, k, "base64url"), true);
  }

  // URL, JSON and HTML escapes are undone before matching (escape-view.ts), whichever characters
  // an encoder escaped. Form encoding's "+" for a space is the exception, as "+" is also itself.
  if (secret.includes(" ")) add(Buffer.from(secret.replaceAll(" ", "+"), "utf8"), false);
  return [...out.values()];
}

/**
 * The base64 characters of `raw` preceded by `k` unknown bytes that depend on `raw` alone: char i
 * covers bits [6i, 6i+6), the secret covers bits [8k, 8k+8n).
 */
function base64Core(raw: Buffer, k: number, alphabet: "base64" | "base64url"): Buffer {
  const shifted = Buffer.concat([Buffer.alloc(k), raw]);
  const encoded = shifted.toString(alphabet).replace(/=+$/, "");
  const from = Math.ceil((8 * k) / 6);
  const to = Math.floor((8 * (k + raw.length)) / 6);
  return Buffer.from(encoded.slice(from, Math.max(from, to)), "latin1");
}
