// biome-ignore-all lint/suspicious/noTemplateCurlyInString: `${credentials.<name>}` placeholders are what these tests are about
import { describe, expect, it } from "vitest";
import { resolvePlaceholders } from "./resolve.js";

const values: Record<string, string> = { a: "AAA", b: "B$&B", "with.dot": "dot" };
const lookup = (name: string) => {
  const v = values[name];
  if (v === undefined) throw new Error(`unknown ${name}`);
  return v;
};

describe("resolvePlaceholders", () => {
  it("replaces every placeholder, several per string, and leaves other text alone", () => {
    expect(resolvePlaceholders("${credentials.a}:${credentials.b}/${credentials.a}", lookup)).toBe("AAA:B$&B/AAA");
    expect(resolvePlaceholders("${credentials.with.dot}", lookup)).toBe("dot");
    expect(resolvePlaceholders("$credentials.a ${credential.a} ${credentials.}", lookup)).toBe(
      "$credentials.a ${credential.a} ${credentials.}",
    );
  });

  it("copies arrays and plain objects deeply and keeps other values as they are", () => {
    const date = new Date(0);
    const buf = Buffer.from("x");
    const fn = () => "${credentials.a}";
    class Custom {
      v = "${credentials.a}";
    }
    const custom = new Custom();
    const input = { n: 1, t: true, z: null, u: undefined, date, buf, fn, custom, deep: [[{ s: "${credentials.a}" }]] };
    const out = resolvePlaceholders(input, lookup);
    expect(out).not.toBe(input);
    expect(out.deep).not.toBe(input.deep);
    expect(out.deep[0]![0]).toEqual({ s: "AAA" });
    expect(out).toMatchObject({ n: 1, t: true, z: null, u: undefined });
    expect(out.date).toBe(date);
    expect(out.buf).toBe(buf);
    expect(out.fn).toBe(fn);
    expect(out.custom).toBe(custom);
    expect(custom.v).toBe("${credentials.a}");
  });

  it("keeps a null-prototype object null-prototype and a __proto__ key as data", () => {
    const bare = Object.assign(Object.create(null), { k: "${credentials.a}" });
    const out = resolvePlaceholders(bare, lookup);
    expect(Object.getPrototypeOf(out)).toBe(null);
    expect(out.k).toBe("AAA");

    const parsed = JSON.parse('{"__proto__": {"polluted": "${credentials.a}"}}');
    const copy = resolvePlaceholders(parsed, lookup);
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect(Object.hasOwn(copy, "__proto__")).toBe(true);
    expect(Object.getOwnPropertyDescriptor(copy, "__proto__")?.value).toEqual({ polluted: "AAA" });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("preserves cycles instead of recursing forever", () => {
    const a: Record<string, unknown> = { s: "${credentials.a}" };
    a.self = a;
    const out = resolvePlaceholders(a, lookup) as Record<string, unknown>;
    expect(out.s).toBe("AAA");
    expect(out.self).toBe(out);
  });

  it("throws for an unknown name rather than return a half-resolved copy", () => {
    expect(() => resolvePlaceholders({ x: ["${credentials.a}", "${credentials.missing}"] }, lookup)).toThrow(
      "unknown missing",
    );
  });
});
