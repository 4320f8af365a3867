import { describe, expect, it } from "vitest";
import { ESCAPERS } from "../../test-support/redaction/escaped-forms.js";
import { createRedactor, DEFAULT_MARKER as M } from "./streaming-redactor.js";

// An agent decodes whatever its encoder escaped: the redactor must find the secret under every
// encoder's choice of characters, not only JavaScript's (issue 11, finding 4).

// Every class of character an encoder treats differently, and text that looks like another
// scheme's escape (`%41`, `\u0041`, `&amp;`), which that scheme's view must not undo.
const SECRET = `k3y&<v>"q'/a b+c~%41\\u0041&amp;ü€😀\u2028z`;
const PLAIN = "sk-live-9fQ2xT7vLm3RbN8kZp4WcY1d";

function streamed(r: ReturnType<typeof createRedactor>, chunks: Buffer[]): { text: string; count: number } {
  const s = r.stream();
  const out = chunks.map((c) => s.push(c));
  out.push(s.end());
  return { text: Buffer.concat(out).toString("utf8"), count: s.count };
}

describe("a secret escaped by encoders that choose other characters than JavaScript's", () => {
  const r = createRedactor([SECRET, PLAIN]);

  it.each(Object.entries(ESCAPERS))("%s, in one pass", (_name, escapeAs) => {
    const form = escapeAs(SECRET);
    expect(form).not.toBe(SECRET);
    expect(r.redactString(`before ${form} after`)).toEqual({ output: `before ${M} after`, count: 1 });
  });

  it.each(Object.entries(ESCAPERS))("%s, streamed with an escape cut at every position", (_name, escapeAs) => {
    const text = Buffer.from(`{"v":"${escapeAs(SECRET)}","w":"${escapeAs(PLAIN)}"}`);
    const whole = r.redact(text);
    expect(whole.count).toBe(2);
    for (let cut = 0; cut <= text.length; cut++) {
      expect(streamed(r, [text.subarray(0, cut), text.subarray(cut)])).toEqual({
        text: `{"v":"${M}","w":"${M}"}`,
        count: 2,
      });
    }
    expect(
      streamed(
        r,
        [...text].map((b) => Buffer.from([b])),
      ).text,
    ).toBe(`{"v":"${M}","w":"${M}"}`);
  });

  it("finds the secret whatever subset of its characters an encoder escaped", () => {
    // Letters and digits escaped or not, by turns: what any encoder may do with them.
    for (const [name, escapeAs] of Object.entries(ESCAPERS)) {
      for (const turn of [0, 1]) {
        const some = [...SECRET]
          .map((ch, i) => (i % 2 === turn && /[A-Za-z0-9]/.test(ch) ? ch : escapeAs(ch)))
          .join("");
        expect(r.redactString(`<${some}>`).output, name).toBe(`<${M}>`);
      }
    }
  });

  it("decodes a JSON surrogate pair written in either case, and a PEM key's \\n escapes", () => {
    const emoji = "tok-😀-😀-value";
    const pem = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END KEY-----";
    const rr = createRedactor([emoji, pem]);
    expect(rr.redactString(`"tok-\\uD83D\\uDE00-\\ud83d\\ude00-value"`).output).toBe(`"${M}"`);
    expect(rr.redactString(`{"key":${JSON.stringify(pem)}}`).output).toBe(`{"key":"${M}"}`);
    expect(rr.redactString(`{"key":${JSON.stringify(pem.replaceAll("\n", "\r\n"))}}`).output).toBe(`{"key":"${M}"}`);
  });

  it("decodes escapes as a decoder reads the text: a line break ends one, so `10%\n` streams at once", () => {
    const s = r.stream();
    expect(s.push(Buffer.from("progress: 10%\n")).toString()).toBe("progress: 10%\n");
    expect(s.push(Buffer.from("50&\r\n")).toString()).toBe("50&\r\n");
    expect(s.push(Buffer.from("a\\\n")).toString()).toBe("a\\\n");
    // A line break between escapes is ignored, as between any two characters of a secret.
    const wrapped = ESCAPERS.pythonQuote?.(SECRET).replace(/(%[0-9A-F]{2})/g, "$1\n") as string;
    expect(r.redactString(`<${wrapped}>`).output).toBe(`<${M}>`);
  });

  it("leaves escapes alone where they do not spell a secret", () => {
    const text = `a=%41%2F&amp;b=\\u0026\\n&#x26;&#38;&lt &nosuch; %zz \\q &# %${SECRET.slice(0, 8)}`;
    expect(r.redactString(text)).toEqual({ output: text, count: 0 });
    const s = r.stream();
    const out = [...Buffer.from(text)].map((b) => s.push(Buffer.from([b])));
    out.push(s.end());
    expect(Buffer.concat(out).toString()).toBe(text);
  });
});
