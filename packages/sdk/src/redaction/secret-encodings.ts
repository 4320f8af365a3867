/**
 * The byte strings under which a secret can leave an upstream or a tool: the secret itself and the
 * encodings services and libraries commonly wrap it in (SPEC §6, §7: raw, base64, URL-encoded, hex).
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

  for (const variant of textEscapes(secret)) add(Buffer.from(variant, "utf8"), false);
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

/** URL and form encodings (both hex cases) and JSON string escapes. */
function textEscapes(secret: string): string[] {
  const variants: string[] = [];
  let url: string | undefined;
  try {
    url = encodeURIComponent(secret);
  } catch {
    // A lone surrogate cannot be URL-encoded; such a value is refused at the edge anyway.
  }
  if (url !== undefined) {
    const lower = url.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase());
    // Form encoding (application/x-www-form-urlencoded) writes a space as "+", and encodes the
    // characters encodeURIComponent leaves alone except *-._
    const form = url
      .replaceAll("%20", "+")
      .replace(/[!'()~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
    variants.push(
      url,
      lower,
      form,
      form.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
    );
  }
  const json = JSON.stringify(secret).slice(1, -1);
  variants.push(json, json.replace(/\//g, "\\/"));
  // Python's json.dumps (ensure_ascii) and others write every non-ASCII character as \uXXXX.
  variants.push(json.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`));
  return variants;
}
