import { describe, expect, it } from "vitest";
import { createRestartPolicy, DEFAULT_RESTART } from "./restart-policy.js";
import { MAX_WORKERS, parseWorkers } from "./workers-flag.js";

describe("restarting workers", () => {
  it("doubles the delay for exits close together, up to the maximum", () => {
    const p = createRestartPolicy({ baseMs: 100, maxMs: 300, maxExits: 10, windowMs: 30_000 });
    expect([0, 1, 2, 3].map((t) => p.onExit(t * 1000))).toEqual([
      { restartInMs: 100 },
      { restartInMs: 200 },
      { restartInMs: 300 },
      { restartInMs: 300 },
    ]);
  });

  it("calls five exits within 30 s a crash loop, and forgets exits older than that", () => {
    const p = createRestartPolicy(DEFAULT_RESTART);
    for (const t of [0, 1000, 2000, 3000]) expect(p.onExit(t)).toHaveProperty("restartInMs");
    expect(p.onExit(29_999)).toEqual({ crashLoop: { exits: 5, withinMs: 30_000 } });
    const q = createRestartPolicy(DEFAULT_RESTART);
    for (const t of [0, 10_000, 20_000, 30_000, 40_000, 50_000]) expect(q.onExit(t)).toHaveProperty("restartInMs");
  });
});

describe("--workers", () => {
  it("defaults to the cores, and takes 1 to the bound", () => {
    expect(parseWorkers(undefined, 4)).toBe(4);
    expect(parseWorkers(undefined, 1000)).toBe(MAX_WORKERS);
    expect(parseWorkers("1", 4)).toBe(1);
    expect(parseWorkers(String(MAX_WORKERS), 4)).toBe(MAX_WORKERS);
  });

  it.each(["0", String(MAX_WORKERS + 1), "1.5", "abc", "", " 2", "02", "1e2", "0x10", `9${"9".repeat(5000)}`])(
    "refuses %j with one line, quoting at most 20 characters of it",
    (v) => {
      const r = parseWorkers(v, 4);
      expect(r).toHaveProperty("error");
      const { error } = r as { error: string };
      expect(error).toMatch(/^--workers must be a whole number from 1 to 256 \(got ".{0,20}"\)$/);
    },
  );
});
