import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createRedactor, DEFAULT_MARKER as M } from "./streaming-redactor.js";

// A secret's shape is set by whoever stores it, a response's text by the upstream: neither may make
// the redactor's cost grow with the square of a length. Before the fix a 64 KiB secret of `a`
// blocked the event loop for about two minutes at build time, and scanning 1 MiB that repeats it
// compared the whole secret again at every offset (tens of seconds). The bound is what it takes
// on a quiet machine (~15-50 ms to build, ~30-50 ms per MiB) times 40, for 2 cores shared with
// other test files: still ~60× below what the quadratic code took.
const SIZE = 64 * 1024;
const BOUND_MS = 2000;

const shapes: Array<[string, string]> = [
  ["all a", "a".repeat(SIZE)],
  ["abab…", "ab".repeat(SIZE / 2)],
  ["abcabc…", "abc".repeat(Math.ceil(SIZE / 3)).slice(0, SIZE)],
  ["random", randomBytes(SIZE).toString("base64").slice(0, SIZE)],
];

function timed<T>(fn: () => T): { value: T; ms: number } {
  const start = performance.now();
  const value = fn();
  return { value, ms: performance.now() - start };
}

describe("a pathological 64 KiB secret costs milliseconds, not minutes", () => {
  it.each(shapes)("%s: building the redactor", (_name, secret) => {
    const { value: r, ms } = timed(() => createRedactor([secret]));
    expect(ms).toBeLessThan(BOUND_MS);
    expect(r.redactString(`<${secret}>`)).toEqual({ output: `<${M}>`, count: 1 });
  });

  it.each(shapes)("%s: scanning 1 MiB that repeats it (one pass and streamed)", (_name, secret) => {
    const r = createRedactor([secret]);
    const text = Buffer.from(`x${secret.repeat(17)}y`);
    const once = timed(() => r.redact(text));
    expect(once.ms).toBeLessThan(BOUND_MS);
    // Nothing of the secret is left: occurrences that overlap (every period of `aaaa…`) share a
    // marker, back-to-back ones get one each.
    const output = once.value.output.toString();
    // (Compared as booleans: a failure must not print a megabyte.)
    expect(output.replaceAll(M, "") === "xy").toBe(true);
    const streamed = timed(() => {
      const s = r.stream();
      const out: Buffer[] = [];
      for (let at = 0; at < text.length; at += 16384) out.push(s.push(text.subarray(at, at + 16384)));
      out.push(s.end());
      return Buffer.concat(out).toString();
    });
    expect(streamed.ms).toBeLessThan(BOUND_MS);
    expect(streamed.value === output).toBe(true);
  });
});

describe("a stream holding back a long secret's prefix", () => {
  it("does not scan the held-back bytes again for every small chunk", () => {
    const secret = "a".repeat(SIZE);
    const r = createRedactor([secret]);
    // Every byte could begin the secret: the stream holds back its longest encoding's worth.
    const text = Buffer.from(`x${"a".repeat(2 * SIZE)}y`);
    const { value, ms } = timed(() => {
      const s = r.stream();
      const out: Buffer[] = [];
      for (let at = 0; at < text.length; at++) out.push(s.push(text.subarray(at, at + 1)));
      out.push(s.end());
      return { text: Buffer.concat(out).toString(), count: s.count };
    });
    expect(ms).toBeLessThan(BOUND_MS);
    expect(value).toEqual({ text: `x${M}y`, count: 1 });
  });
});
