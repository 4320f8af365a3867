import { it } from "vitest";
import { randomBytes } from "node:crypto";
import { createRedactor } from "./streaming-redactor.js";
it("perf", () => {
  const secrets = Array.from({ length: 10 }, () => randomBytes(30).toString("base64url"));
  let t0 = performance.now();
  const r = createRedactor(secrets);
  console.log("compile ms", performance.now() - t0, "patterns", r.patternCount, "max", r.maxPatternLength);
  const text = Buffer.from(randomBytes(768 * 1024).toString("base64"));
  for (let i = 0; i < 5; i++) r.redact(text);
  t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < 2000) { r.redact(text); n++; }
  const ms = performance.now() - t0;
  console.log("one-shot MB/s", (n * text.length) / 1e6 / (ms / 1000));
  t0 = performance.now(); n = 0;
  while (performance.now() - t0 < 2000) {
    const s = r.stream();
    for (let at = 0; at < text.length; at += 16384) s.push(text.subarray(at, at + 16384));
    s.end(); n++;
  }
  console.log("stream 16K MB/s", (n * text.length) / 1e6 / ((performance.now() - t0) / 1000));
  const ascii = Buffer.from("lorem ipsum dolor sit amet, consectetur adipiscing elit ".repeat(20000));
  t0 = performance.now(); n = 0;
  while (performance.now() - t0 < 2000) { r.redact(ascii); n++; }
  console.log("prose MB/s", (n * ascii.length) / 1e6 / ((performance.now() - t0) / 1000));
});
