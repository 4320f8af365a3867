/**
 * Whether a request path can be forwarded below a base path without any server behind Keyward
 * reading it as somewhere else. The gateway (`/agents/{name}/…` → the agent's upstream), egress
 * (`/egress/{credential}/…` → `base_url`) and forward-auth (`/v1/verify`, where a proxy routes
 * on its own reading of the URI Keyward authorized) all ask this one function.
 *
 * Servers disagree on what a path means: WHATWG parsers read `\` as `/` and `%2e` as `.`; nginx
 * decodes once and then resolves `..`; Tomcat drops `;params` (`..;` is `..`); some stacks decode
 * twice or more, accept overlong UTF-8 (`%c0%ae` is `.`) or NFKC-normalize (`．` is `.`). So a
 * path is accepted only if every reading agrees it stays below the base: the raw path and each of
 * up to {@link MAX_DECODES} layers of %-decoding must be free of dot segments (also before `;`),
 * empty segments (`//host` reads as an authority), backslashes and control characters; decoded
 * bytes must be well-formed UTF-8 whose NFKC form adds no path syntax. Deeper nesting is refused.
 *
 * Kept on purpose, since real APIs use them: `@ : ; = , + ! $ ~` inside segments (`/users/@me`,
 * npm's `/@scope/pkg`), dots inside names (`a.b..c`), `%20`, non-ASCII as UTF-8 escapes, and an
 * encoded slash inside a segment (`group%2Fproject`, GitLab) unless its decoding makes an
 * empty or dot segment. A trailing slash is fine. The query string is not a path: not judged here.
 */

/** Why a path was refused. A closed union: callers map it, never compare messages. */
export type PathRefusal =
  /** Not empty and not starting with `/`. */
  | "not_rooted"
  /** A raw space, `#`, non-ASCII character, or other character a request path cannot hold as is. */
  | "invalid_character"
  /** `%` not followed by two hex digits (raw), or an IIS-style `%uXXXX` (any layer). */
  | "bad_escape"
  /** CR, LF, NUL, TAB, DEL or a C1 control, at any decoding layer. */
  | "control_character"
  /** `\` or `%5c`: WHATWG parsers and Windows servers read it as `/`. */
  | "backslash"
  /** A `.` or `..` segment (also as `..;x`, `..%3fx`, `..%20`, encoded, or through NFKC), at any decoding layer. */
  | "dot_segment"
  /** `//` at any decoding layer. */
  | "empty_segment"
  /** Decoded bytes that are not well-formed UTF-8 (overlong forms such as `%c0%ae`, surrogates). */
  | "invalid_utf8"
  /** A character that NFKC turns into `.`, `/`, `\`, `%` or `;` (fullwidth `．`, `‥`). */
  | "unicode_path_syntax"
  /** Still %-encoded after {@link MAX_DECODES} decodings. */
  | "too_deeply_encoded";

export type PathCheck = { readonly ok: true } | { readonly ok: false; readonly reason: PathRefusal };

/** Human-readable text for a refusal, for the `message` of a 400 `invalid_request`. */
export const PATH_REFUSAL_MESSAGES: Readonly<Record<PathRefusal, string>> = {
  not_rooted: "the path must start with /",
  invalid_character: "the path may hold only visible ASCII characters (others %-encoded), and no #",
  bad_escape: "the path holds a % that does not start a valid %XX escape",
  control_character: "the path must not contain control characters (CR, LF, NUL…), also %-encoded",
  backslash: "the path must not contain a backslash, also %-encoded",
  dot_segment: "the path must not contain . or .. segments, also %-encoded or as ..;",
  empty_segment: "the path must not contain empty segments (//), also %-encoded",
  invalid_utf8: "the path's %-escapes must encode well-formed UTF-8 (no overlong forms)",
  unicode_path_syntax: "the path must not contain characters that normalize to . / \\ % or ; (fullwidth dot…)",
  too_deeply_encoded: "the path is %-encoded too many times over",
};

/** Decodings checked: an upstream, or proxies in front of it, may each decode once more. */
export const MAX_DECODES = 4;

const OK: PathCheck = Object.freeze({ ok: true });
const SLASH = 0x2f;
const DOT = 0x2e;
const SEMI = 0x3b;
const PERCENT = 0x25;
const BACKSLASH = 0x5c;
const HASH = 0x23;
const QUERY = 0x3f;

/** Scan results besides a refusal: bit flags, so the hot path returns a number, not an object. */
const ESCAPED = 1;
const HIGH = 2;

/**
 * Judges `path` ("" or starting with "/", still %-encoded, without the query).
 *
 * An ordinary path (no `%`) is judged by one scan over its characters, allocating nothing: this
 * runs for every gateway request. Only a path with escapes is decoded, layer by layer.
 *
 * @example
 * checkForwardedPath("/v1/users/@me")    // { ok: true }
 * checkForwardedPath("/a/%252e%252e/x")  // { ok: false, reason: "dot_segment" }
 */
export function checkForwardedPath(path: string): PathCheck {
  if (path === "") return OK;
  if (path.charCodeAt(0) !== SLASH) return refuse("not_rooted");
  let layer = path;
  let scan = scanLayer(layer, true);
  for (let decodes = 0; typeof scan === "number" && scan & ESCAPED; ) {
    if (decodes === MAX_DECODES) return refuse("too_deeply_encoded");
    layer = percentDecode(layer);
    decodes++;
    scan = scanLayer(layer, false);
    if (typeof scan === "number" && scan & HIGH) {
      const unicode = checkUnicode(layer);
      if (unicode) return refuse(unicode);
    }
  }
  return typeof scan === "number" ? OK : refuse(scan);
}

/**
 * One layer's characters and segments, in one pass without allocating. `raw`: the path as
 * received, where only visible ASCII may appear; decoded layers are byte strings (latin1), where
 * bytes ≥ 0x80 are left to {@link checkUnicode}.
 */
function scanLayer(s: string, raw: boolean): PathRefusal | number {
  let flags = 0;
  let segStart = 1; // s[0] is "/"
  let bareEnd = -1; // where the segment's `;params` start, if they do
  for (let i = 1; i <= s.length; i++) {
    const c = i === s.length ? SLASH : s.charCodeAt(i);
    if (c === SLASH) {
      let end = bareEnd === -1 ? i : bareEnd;
      // Windows servers drop a segment's trailing spaces, WHATWG parsers the URL's: `..%20` is `..`.
      while (end > segStart && s.charCodeAt(end - 1) === 0x20) end--;
      const len = end - segStart;
      if (len === 1 && s.charCodeAt(segStart) === DOT) return "dot_segment";
      if (len === 2 && s.charCodeAt(segStart) === DOT && s.charCodeAt(segStart + 1) === DOT) return "dot_segment";
      // Only a trailing empty segment (`/a/`) is harmless.
      if (i === segStart && i < s.length) return "empty_segment";
      segStart = i + 1;
      bareEnd = -1;
    } else if (c < 0x20 || c === 0x7f) {
      return "control_character";
    } else if (c === BACKSLASH) {
      return "backslash";
    } else if (raw && (c === 0x20 || c === HASH)) {
      return "invalid_character";
    } else if (c === SEMI || c === QUERY || c === HASH) {
      // What a server may cut off before resolving: `;params` (Tomcat), and a `?` or `#` that a
      // decoding hop let through raw (the next one splits the query off there).
      if (bareEnd === -1) bareEnd = i;
    } else if (c === PERCENT) {
      if (isHex(s.charCodeAt(i + 1)) && isHex(s.charCodeAt(i + 2))) flags |= ESCAPED;
      else if (raw) return "bad_escape";
      else if (isUnicodeEscape(s, i)) return "bad_escape";
    } else if (c >= 0x80) {
      if (raw) return "invalid_character";
      flags |= HIGH;
    }
  }
  return flags;
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** `%u002e`: IIS decodes it. A literal `%` is fine, but not one that such a decoder would read. */
function isUnicodeEscape(s: string, i: number): boolean {
  const u = s.charCodeAt(i + 1);
  if (u !== 0x75 && u !== 0x55) return false;
  for (let k = 2; k <= 5; k++) if (!isHex(s.charCodeAt(i + k))) return false;
  return true;
}

/** One layer of %-decoding, byte-wise into latin1 (the checks are about bytes). Bad escapes stay. */
function percentDecode(s: string): string {
  return s.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

const PATH_SYNTAX = /[./\\%;]/g;

/** A decoded layer's bytes ≥ 0x80: well-formed UTF-8, no C1 controls, no NFKC path syntax. */
function checkUnicode(bytes: string): PathRefusal | undefined {
  if (!wellFormedUtf8(bytes)) return "invalid_utf8";
  const text = Buffer.from(bytes, "latin1").toString("utf8");
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80 && c <= 0x9f) return "control_character";
  }
  const folded = text.normalize("NFKC");
  // NFKC never removes ASCII, so more path syntax afterwards means a character became some.
  if (folded !== text && count(folded) > count(text)) return "unicode_path_syntax";
  return undefined;
}

function count(s: string): number {
  return s.match(PATH_SYNTAX)?.length ?? 0;
}

/**
 * Strict UTF-8 (RFC 3629) over a byte string: shortest forms only (no `c0 ae`, `e0 80 ae`), no
 * surrogates (`ed a0 80`), nothing above U+10FFFF. Lenient decoders turn overlong forms into `.`.
 */
function wellFormedUtf8(s: string): boolean {
  for (let i = 0; i < s.length; ) {
    const b = s.charCodeAt(i);
    if (b < 0x80) {
      i++;
      continue;
    }
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) n = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      n = 2;
      if (b === 0xe0) lo = 0xa0;
      if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      n = 3;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f;
    } else return false;
    // Only the first continuation byte has the narrowed range.
    const first = s.charCodeAt(i + 1);
    if (!(first >= lo && first <= hi)) return false;
    for (let k = 2; k <= n; k++) {
      const cont = s.charCodeAt(i + k);
      if (!(cont >= 0x80 && cont <= 0xbf)) return false;
    }
    i += n + 1;
  }
  return true;
}

function refuse(reason: PathRefusal): PathCheck {
  return { ok: false, reason };
}
