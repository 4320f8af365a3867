/**
 * A secret as escapers in the wild write it: JSON, URL and HTML encoders that escape more or fewer
 * characters than JavaScript's, in either hex case. Each is written from the encoder's own rules,
 * not from the redactor's code, so a test built on them checks the redactor against the world.
 */

const utf8Percent = (ch: string, lower = false) =>
  [...Buffer.from(ch, "utf8")]
    .map((b) => `%${b.toString(16).padStart(2, "0")[lower ? "toLowerCase" : "toUpperCase"]()}`)
    .join("");

const unit = (c: number, upper: boolean) =>
  `\\u${c.toString(16).padStart(4, "0")[upper ? "toUpperCase" : "toLowerCase"]()}`;

/** Every UTF-16 unit as \uXXXX (so a character outside the BMP is a surrogate pair). */
const jsonUnits = (s: string, upper: boolean) =>
  Array.from({ length: s.length }, (_, i) => unit(s.charCodeAt(i), upper)).join("");

const json = (s: string) => JSON.stringify(s).slice(1, -1);

/** URL-encodes every character not in `safe` (a regex class), one %XX per UTF-8 byte. */
const percent = (s: string, safe: RegExp, lower = false) =>
  [...s].map((ch) => (safe.test(ch) ? ch : utf8Percent(ch, lower))).join("");

const UNRESERVED = /^[A-Za-z0-9_.~-]$/;

export const ESCAPERS: Record<string, (s: string) => string> = {
  // Go's encoding/json: HTML-safe escapes and the JavaScript line separators.
  goJson: (s) => json(s).replace(/[&<>\u2028\u2029]/g, (c) => unit(c.charCodeAt(0), false)),
  jsonEveryUnitLower: (s) => jsonUnits(s, false),
  jsonEveryUnitUpper: (s) => jsonUnits(s, true),
  // Python's json.dumps (ensure_ascii=True).
  pythonJson: (s) => json(s).replace(/[\u0080-\uffff]/g, (c) => unit(c.charCodeAt(0), false)),
  // PHP's json_encode: slashes and non-ASCII escaped.
  phpJson: (s) =>
    json(s)
      .replaceAll("/", "\\/")
      .replace(/[\u0080-\uffff]/g, (c) => unit(c.charCodeAt(0), false)),
  // Python's urllib.parse.quote (keeps "/") and quote_plus (space as "+", "/" escaped).
  pythonQuote: (s) => percent(s, /^[A-Za-z0-9_.~/-]$/),
  pythonQuotePlus: (s) => percent(s, /^[A-Za-z0-9_.~ -]$/).replaceAll(" ", "+"),
  urlLowerHex: (s) => percent(s, UNRESERVED, true),
  urlEveryByte: (s) => [...s].map((ch) => utf8Percent(ch)).join(""),
  // A loose encoder: only what breaks a query string, and non-ASCII.
  urlMinimal: (s) => percent(s, /^[^%&+#? \u0080-\uffff]$/u),
  htmlNamed: (s) =>
    s.replace(
      /[&<>"']/g,
      (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c] as string,
    ),
  htmlDecimal: (s) => s.replace(/[&<>"'/=`]/g, (c) => `&#${c.charCodeAt(0)};`),
  htmlHexLower: (s) =>
    [...s].map((c) => (/[A-Za-z0-9]/.test(c) ? c : `&#x${(c.codePointAt(0) as number).toString(16)};`)).join(""),
  htmlHexUpperX: (s) =>
    [...s]
      .map((c) => (/[A-Za-z0-9]/.test(c) ? c : `&#X${(c.codePointAt(0) as number).toString(16).toUpperCase()};`))
      .join(""),
  htmlEveryCharLeadingZeros: (s) => [...s].map((c) => `&#000${c.codePointAt(0)};`).join(""),
};
