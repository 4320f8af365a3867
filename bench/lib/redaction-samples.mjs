// Texts the redaction bench scans: 1 MiB each, with the bench's 10 secrets planted in a mix of
// encodings. `plain` holds no escape introducer (`%`, `\`, `&`): the redactor's fast path. The
// others are dense with escapes, as real tool output and upstream responses are: HTML with
// entities on every line, JSON whose strings are URL-encoded base64 (`%2B`/`%2F`/`%3D` decode to
// bytes base64 patterns hold, so every escape is worth decoding), and Go-style JSON
// (`\u003c`/`\u0026`, which decode to bytes no pattern holds).
import { randomBytes } from "node:crypto";

const SIZE = 1 << 20;
/** Leaks per text, spread evenly. */
const LEAKS = 10;

const pct = (b) => `%${b.toString(16).padStart(2, "0").toUpperCase()}`;
/** The secret's forms an encoder could leave it in; each text plants them in turn. */
const FORMS = {
  raw: (s) => s,
  base64: (s) => Buffer.from(s).toString("base64"),
  hex: (s) => Buffer.from(s).toString("hex"),
  urlComponent: (s) => encodeURIComponent(s),
  urlEveryByte: (s) => [...Buffer.from(s)].map(pct).join(""),
  urlBase64: (s) => encodeURIComponent(Buffer.from(s).toString("base64")),
  htmlDecimal: (s) => [...s].map((c) => (/[a-z]/.test(c) ? c : `&#${c.charCodeAt(0)};`)).join(""),
  htmlHex: (s) => [...s].map((c) => `&#x${c.charCodeAt(0).toString(16)};`).join(""),
  jsonUnits: (s) => [...s].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`).join(""),
  goJsonBase64: (s) => Buffer.from(s).toString("base64").replaceAll("+", "\\u002b"),
};

const word = () => randomBytes(12).toString("base64url");
const b64 = (n) => randomBytes(n).toString("base64");

const KINDS = {
  plain: {
    line: (i) => `{"id":${i},"text":"${b64(48)} lorem ipsum dolor sit amet"}\n`,
    leak: (form) => `{"leak":"${form}"}\n`,
    forms: ["raw", "base64", "hex", "urlComponent"],
  },
  html: {
    line: (i) =>
      `<li id="r${i}" class="row">Tom &amp; Jerry &lt;${word()}&gt; &quot;${word()}&quot; &#39;x&#39; &nbsp;${word()}</li>\n`,
    leak: (form) => `<td data-k="${form}">&copy; key</td>\n`,
    forms: ["raw", "htmlDecimal", "htmlHex", "base64", "urlEveryByte"],
  },
  urlBase64Json: {
    line: (i) => `{"id":${i},"blob":"${encodeURIComponent(b64(48))}","sig":"${encodeURIComponent(b64(15))}"}\n`,
    leak: (form) => `{"leak":"${form}"}\n`,
    forms: ["urlBase64", "urlEveryByte", "raw", "hex", "jsonUnits"],
  },
  goJson: {
    line: (i) =>
      `{"id":${i},"html":"\\u003cb\\u003e${word()}\\u003c/b\\u003e \\u0026 \\u003ci\\u003e${word()}\\u003c/i\\u003e","n":"${word()}"}\n`,
    leak: (form) => `{"leak":"${form}"}\n`,
    forms: ["jsonUnits", "goJsonBase64", "raw", "urlComponent", "htmlHex"],
  },
};

export const SAMPLE_KINDS = Object.keys(KINDS);

/** 1 MiB of `kind` text with LEAKS secrets in it, each in the next of the kind's forms. */
export function sampleText(kind, secrets) {
  const { line, leak, forms } = KINDS[kind];
  const parts = [];
  let size = 0;
  let planted = 0;
  for (let i = 0; size < SIZE; i++) {
    const filler = line(i);
    parts.push(filler);
    size += filler.length;
    if (planted < LEAKS && size >= (planted * SIZE) / LEAKS) {
      const form = FORMS[forms[planted % forms.length]](secrets[planted % secrets.length]);
      const text = leak(form);
      parts.push(text);
      size += text.length;
      planted++;
    }
  }
  // Cut at a line break: a leak cut in half is not a leak.
  const text = Buffer.from(parts.join(""));
  return text.subarray(0, text.lastIndexOf(10, SIZE) + 1);
}
