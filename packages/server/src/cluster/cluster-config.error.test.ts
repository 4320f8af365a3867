import { describe, expect, it } from "vitest";
import { loadConfig } from "../config.js";

describe("replica settings", () => {
  it("default to a 1 s reconciliation and 30 s of trusted staleness", () => {
    const c = loadConfig({ env: {} });
    expect(c.reconcile_interval_ms).toBe(1000);
    expect(c.max_staleness_ms).toBe(30_000);
  });

  it("are read from KEYWARD_RECONCILE_INTERVAL_MS and KEYWARD_MAX_STALENESS_MS", () => {
    const c = loadConfig({ env: { KEYWARD_RECONCILE_INTERVAL_MS: "250", KEYWARD_MAX_STALENESS_MS: "5000" } });
    expect(c.reconcile_interval_ms).toBe(250);
    expect(c.max_staleness_ms).toBe(5000);
  });

  it.each([
    [{ KEYWARD_RECONCILE_INTERVAL_MS: "0" }, "KEYWARD_RECONCILE_INTERVAL_MS"],
    [{ KEYWARD_RECONCILE_INTERVAL_MS: "soon" }, "KEYWARD_RECONCILE_INTERVAL_MS"],
    [{ KEYWARD_MAX_STALENESS_MS: "-1" }, "KEYWARD_MAX_STALENESS_MS"],
    // Staleness shorter than two intervals would drop every cache on every tick.
    [{ KEYWARD_RECONCILE_INTERVAL_MS: "5000", KEYWARD_MAX_STALENESS_MS: "6000" }, "KEYWARD_MAX_STALENESS_MS"],
  ])("refuse %j, naming %s", (env, name) => {
    expect(() => loadConfig({ env })).toThrow(name);
  });
});
