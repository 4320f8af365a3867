import { describe, expect, it } from "vitest";
import { encodings } from "../../test-support/redaction/secret-forms.js";
import { createRedactor, DEFAULT_MARKER } from "./streaming-redactor.js";

const SECRET = "sk-live-9fQ2xT7vLm3RbN8kZp4WcY1dHs6Ej0Ga";
const M = DEFAULT_MARKER;

/** A deterministic PRNG, so a failure can be replayed. */
function prng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

function streamed(r: ReturnType<typeof createRedactor>, chunks: Buffer[]): { text: string; count: number } {
  const s = r.stream();
  const out = chunks.map((c) => s.push(c));
  out.push(s.end());
  return { text: Buffer.concat(out).toString("utf8"), count: s.count };
}

describe("createRedactor().redact", () => {
  it("removes the secret in every encoding", () => {
    const r = createRedactor([SECRET]);
    for (const [name, form] of Object.entries(encodings(SECRET))) {
      const { output, count } = r.redactString(`before ${form} after`);
      expect(output, name).toBe(`before ${M} after`);
      expect(count, name).toBe(1);
    }
  });

  it("removes a secret with characters every encoding treats differently", () => {
    const secret = 'p@ss w/"quote"+slash\\ünï€😀';
    const r = createRedactor([secret]);
    const forms = {
      ...encodings(secret),
      form: new URLSearchParams({ x: secret }).toString().slice(2),
      pythonJson: JSON.stringify(secret)
        .slice(1, -1)
        .replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`),
      lowerUrl: encodeURIComponent(secret).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
    };
    for (const [name, form] of Object.entries(forms)) {
      expect(r.redactString(`<${form}>`).output, name).toBe(`<${M}>`);
    }
  });

  it("finds the secret inside longer base64 text at every alignment (Basic auth, encoded JSON)", () => {
    const r = createRedactor([SECRET]);
    for (const prefix of ["", "u:", "ab:", "user:", "longer-user-name:"]) {
      for (const suffix of ["", "!", "\n}"]) {
        for (const alphabet of ["base64", "base64url"] as const) {
          const before = Buffer.from(prefix).toString(alphabet);
          const encoded = Buffer.from(prefix + SECRET + suffix).toString(alphabet);
          const { output, count } = r.redactString(encoded);
          expect(count, `${alphabet} ${JSON.stringify(prefix)}`).toBe(1);
          // What is left besides the marker is the encoding of the prefix and suffix, and at most
          // two characters mixing their bits with the secret's: never enough to recover it.
          const left = output.replace(M, "");
          const others = encoded.length - Buffer.from(SECRET).toString(alphabet).replace(/=+$/, "").length;
          expect(left.length).toBeLessThanOrEqual(others + 4);
          expect(output.startsWith(before.replace(/=+$/, "").slice(0, -1))).toBe(true);
        }
      }
    }
  });

  it("redacts every secret it was given, each occurrence counted", () => {
    const other = "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8";
    const r = createRedactor([SECRET, other]);
    const { output, count } = r.redactString(`${SECRET} and ${Buffer.from(other).toString("hex")} and ${SECRET}`);
    expect(output).toBe(`${M} and ${M} and ${M}`);
    expect(count).toBe(3);
  });

  it("merges overlapping occurrences into one marker; back-to-back ones get one each", () => {
    expect(createRedactor(["abcdabcd"]).redactString("xabcdabcdabcdx")).toEqual({ output: `x${M}x`, count: 1 });
    expect(createRedactor([SECRET]).redactString(`${SECRET}${SECRET}`)).toEqual({ output: `${M}${M}`, count: 2 });
  });

  it("leaves text without the secret untouched (and partial secrets are not secrets)", () => {
    const r = createRedactor([SECRET]);
    const text = `${SECRET.slice(0, -1)} ${SECRET.slice(1)} ${SECRET.toUpperCase()}`;
    expect(r.redactString(text)).toEqual({ output: text, count: 0 });
  });

  it("with no secrets is inactive and passes everything through", () => {
    const r = createRedactor([]);
    expect(r.active).toBe(false);
    expect(r.redactString("anything").output).toBe("anything");
    const s = r.stream();
    expect(s.push(Buffer.from("abc")).toString()).toBe("abc");
    expect(s.end().length).toBe(0);
  });

  it("skips only strings too short to hold the shortest pattern (counted in UTF-8 bytes)", () => {
    const r = createRedactor(["pin9", "ü€"]);
    expect(r.minPatternLength).toBe(4);
    expect(r.redactString("pin9")).toEqual({ output: M, count: 1 });
    // Two UTF-16 units, five UTF-8 bytes: long enough to be the secret.
    expect(r.redactString("ü€")).toEqual({ output: M, count: 1 });
    expect(r.redactString("pin")).toEqual({ output: "pin", count: 0 });
    expect(createRedactor([]).minPatternLength).toBe(0);
  });

  it("handles binary input around the secret", () => {
    const r = createRedactor([SECRET]);
    const bytes = Buffer.concat([Buffer.from([0, 255, 1]), Buffer.from(SECRET), Buffer.from([254, 0])]);
    expect([...r.redact(bytes).output]).toEqual([0, 255, 1, ...Buffer.from(M), 254, 0]);
  });
});

describe("line breaks inside an encoded secret", () => {
  const wrap = (text: string, width: number, eol: string) =>
    (text.match(new RegExp(`.{1,${width}}`, "gs")) ?? []).join(eol);
  const env = `HOME=/home/tool\nPATH=/usr/bin\nALIYUN_AK=${SECRET}\nLANG=C.UTF-8\n`;

  it("redacts `env | base64` wrapped at 76 columns (LF), at 64 (CRLF, as PEM and MIME) and at 13", () => {
    const r = createRedactor([SECRET]);
    for (const [width, eol] of [
      [76, "\n"],
      [64, "\r\n"],
      [13, "\n"],
    ] as const) {
      // At every offset, so the secret's encoding is cut by a line break at every position.
      for (let pad = 0; pad < 80; pad++) {
        const printed = wrap(Buffer.from("#".repeat(pad) + env).toString("base64"), width, eol);
        const { output, count } = r.redactString(printed);
        expect(count).toBeGreaterThan(0);
        const decoded = Buffer.from(output.replaceAll(M, "").replace(/\s/g, ""), "base64").toString("latin1");
        expect(decoded).not.toContain(SECRET.slice(4, 16));
      }
    }
  });

  it("redacts a secret holding line breaks (a PEM key) printed with other line endings", () => {
    const pem = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END KEY-----";
    const r = createRedactor([pem]);
    expect(r.redactString(`key: ${pem.replaceAll("\n", "\r\n")}!`).output).toBe(`key: ${M}!`);
    expect(r.redactString(`key: ${pem}!`).output).toBe(`key: ${M}!`);
  });

  it("streams wrapped output chunk by chunk with the one-shot result", () => {
    const r = createRedactor([SECRET, "short-but-real-8"]);
    const rand = prng(977);
    for (let round = 0; round < 100; round++) {
      const printed = wrap(Buffer.from("#".repeat(round % 7) + env.repeat(3)).toString("base64"), 76, "\n");
      const bytes = Buffer.from(printed);
      const chunks: Buffer[] = [];
      for (let at = 0; at < bytes.length; ) {
        const n = 1 + Math.floor(rand() * 50);
        chunks.push(bytes.subarray(at, at + n));
        at += n;
      }
      const whole = r.redact(bytes);
      expect(streamed(r, chunks)).toEqual({ text: whole.output.toString(), count: whole.count });
      expect(whole.count).toBeGreaterThanOrEqual(3);
    }
  });
});

describe("createRedactor().stream", () => {
  it("redacts a secret split across two chunks at every position, in every encoding", () => {
    const r = createRedactor([SECRET]);
    for (const [name, form] of Object.entries(encodings(SECRET))) {
      const text = Buffer.from(`data: {"k":"${form}"}\n\n`);
      for (let cut = 0; cut <= text.length; cut++) {
        const { text: out, count } = streamed(r, [text.subarray(0, cut), text.subarray(cut)]);
        expect(out, `${name} cut at ${cut}`).toBe(`data: {"k":"${M}"}\n\n`);
        expect(count).toBe(1);
      }
    }
  });

  it("redacts a secret fed one byte at a time", () => {
    const r = createRedactor([SECRET]);
    const text = Buffer.from(`a ${SECRET} b ${Buffer.from(SECRET).toString("base64")} c`);
    const chunks = [...text].map((b) => Buffer.from([b]));
    expect(streamed(r, chunks).text).toBe(`a ${M} b ${M} c`);
  });

  it("lets a chunk that cannot begin a secret through at once (SSE keeps flowing)", () => {
    const r = createRedactor([SECRET]);
    const s = r.stream();
    expect(s.push(Buffer.from("event: a\ndata: 1\n\n")).toString()).toBe("event: a\ndata: 1\n\n");
    expect(s.push(Buffer.from(`data: ${SECRET}\n\n`)).toString()).toBe(`data: ${M}\n\n`);
  });

  it("holds back only what could begin the secret, and releases it when it does not", () => {
    const r = createRedactor([SECRET]);
    const s = r.stream();
    const head = SECRET.slice(0, 20);
    expect(s.push(Buffer.from(`x ${head}`)).toString()).toBe("x ");
    expect(s.push(Buffer.from("!")).toString()).toBe(`${head}!`);
    expect(s.push(Buffer.from(SECRET.slice(0, 5))).toString()).toBe("");
    expect(s.end().toString()).toBe(SECRET.slice(0, 5));
  });

  it("never holds back more than the longest pattern minus one byte", () => {
    const r = createRedactor([SECRET]);
    const s = r.stream();
    // All but the last character of the longest encoding: every byte could still begin it.
    const almost = Buffer.from(Buffer.from(SECRET).toString("hex").slice(0, -1));
    const out: Buffer[] = [];
    let held = 0;
    let most = 0;
    for (const c of almost) {
      const o = s.push(Buffer.from([c]));
      out.push(o);
      held += 1 - o.length;
      most = Math.max(most, held);
    }
    expect(most).toBe(almost.length);
    expect(most).toBeLessThanOrEqual(r.maxPatternLength - 1);
    out.push(s.end());
    expect(Buffer.concat(out).equals(almost)).toBe(true);
  });

  it("matches the one-shot result on random text, secrets and chunkings", () => {
    const rand = prng(20240611);
    const secrets = [SECRET, "short-but-real-8", "ünïcödé-sëcrét-välüé"];
    const r = createRedactor(secrets);
    const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/=-_%\n :";
    for (let round = 0; round < 200; round++) {
      let text = "";
      while (text.length < 400) {
        if (rand() < 0.1) {
          const secret = secrets[Math.floor(rand() * secrets.length)] as string;
          const forms = Object.values(encodings(secret));
          text += forms[Math.floor(rand() * forms.length)];
        } else text += alphabet[Math.floor(rand() * alphabet.length)];
      }
      const bytes = Buffer.from(text);
      const chunks: Buffer[] = [];
      for (let at = 0; at < bytes.length; ) {
        const n = 1 + Math.floor(rand() * 60);
        chunks.push(bytes.subarray(at, at + n));
        at += n;
      }
      const whole = r.redact(bytes);
      const parts = streamed(r, chunks);
      expect(parts.text).toBe(whole.output.toString());
      expect(parts.count).toBe(whole.count);
      for (const secret of secrets) expect(parts.text).not.toContain(secret);
    }
  });

  it("refuses more input after end", () => {
    const s = createRedactor([SECRET]).stream();
    s.end();
    expect(() => s.push(Buffer.from("x"))).toThrow(/ended/);
  });
});
