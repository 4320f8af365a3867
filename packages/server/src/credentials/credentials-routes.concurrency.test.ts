import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../../test-support/server.js";

let kw: TestServer;
beforeAll(async () => {
  kw = await startTestServer();
});
afterAll(async () => kw?.close());

describe("concurrent writes over the admin API", () => {
  it("answers each PUT and rollback with the version that very write created", async () => {
    const puts = await Promise.all(
      Array.from({ length: 20 }, (_, i) => kw.admin("PUT", "/credentials/race", { value: `v${i}` })),
    );
    const versions = puts.map((r) => r.body.version as number);
    expect(new Set(versions).size).toBe(20);
    expect([...versions].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const rollbacks = await Promise.all(
      [1, 2, 3, 4, 5].map((version) => kw.admin("POST", "/credentials/race/rollback", { version })),
    );
    expect(new Set(rollbacks.map((r) => r.body.version)).size).toBe(5);
    expect(rollbacks.every((r) => r.status === 200 && r.body.version > 20)).toBe(true);
  });
});
