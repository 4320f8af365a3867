import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../../test-support/server.js";
import type { Json } from "../../test-support/users/users-fixture.js";

/**
 * `GET /admin/v1/users` (who has per-user tool credentials) on a real Keyward: users by id, each
 * with their credentials' names and versions, paged like every admin list, filtered by a
 * credential name, and never a value.
 */

let kw: TestServer;
const replies: string[] = [];
const CANARY = "CANARY-user-list-4b7e1f09";

const put = async (user: string, name: string, value = `${CANARY}-${user}-${name}`) => {
  const r = await kw.admin("PUT", `/users/${encodeURIComponent(user)}/credentials/${name}`, { value });
  expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
};

/** GET /admin/v1/users with `query`; every reply is kept for the canary check. */
async function list(query = ""): Promise<Json> {
  const r = await kw.admin("GET", `/users${query}`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  replies.push(JSON.stringify(r.body));
  return r.body;
}

/** Follows next_cursor to the end; answers the pages' user ids. */
async function pages(query: string): Promise<string[][]> {
  const out: string[][] = [];
  let page = await list(`?${query}`);
  for (;;) {
    out.push(page.items.map((i: Json) => i.user));
    if (page.next_cursor === null) return out;
    page = await list(`?${query}&cursor=${encodeURIComponent(page.next_cursor)}`);
  }
}

const ids = (n: number) => Array.from({ length: n }, (_, i) => `user${String(i).padStart(3, "0")}@example.com`);

beforeAll(async () => {
  kw = await startTestServer();
  // 105 users with `cloud_ak`; every third also has `gh`; the first has `cloud_ak` twice.
  for (const [i, user] of ids(105).entries()) {
    await put(user, "cloud_ak");
    if (i % 3 === 0) await put(user, "gh");
  }
  await put(ids(1)[0]!, "cloud_ak");
});
afterAll(async () => {
  await kw?.close();
});

describe("GET /admin/v1/users", () => {
  it("answers users by id with their credentials' metadata: exactly user, name, version, updated_at", async () => {
    const body = await list("?limit=2");
    expect(Object.keys(body).sort()).toEqual(["items", "next_cursor"]);
    expect(body.items).toEqual([
      {
        user: "user000@example.com",
        credentials: [
          { name: "cloud_ak", version: 2, updated_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/) },
          { name: "gh", version: 1, updated_at: expect.any(String) },
        ],
      },
      { user: "user001@example.com", credentials: [{ name: "cloud_ak", version: 1, updated_at: expect.any(String) }] },
    ]);
    expect(body.next_cursor).toEqual(expect.any(String));
  });

  it("pages 100 users by default and follows the opaque cursor to the end, each user once", async () => {
    const first = await list();
    expect(first.items).toHaveLength(100);
    const rest = await list(`?cursor=${encodeURIComponent(first.next_cursor)}`);
    expect(rest.items.map((i: Json) => i.user)).toEqual(ids(105).slice(100));
    expect(rest.next_cursor).toBeNull();

    const byForty = await pages("limit=40");
    expect(byForty.map((p) => p.length)).toEqual([40, 40, 25]);
    expect(byForty.flat()).toEqual(ids(105));
  });

  it("filters by credential name: only users who have set it, each with every credential", async () => {
    const withGh = ids(105).filter((_, i) => i % 3 === 0);
    const paged = await pages("credential=gh&limit=10");
    expect(paged.map((p) => p.length)).toEqual([10, 10, 10, 5]);
    expect(paged.flat()).toEqual(withGh);
    const one = await list("?credential=gh&limit=1");
    expect(one.items[0].credentials.map((c: Json) => c.name)).toEqual(["cloud_ak", "gh"]);
    expect(await list("?credential=nobody_has_this")).toEqual({ items: [], next_cursor: null });
  });

  it("drops a user whose last credential was deleted, and shows a new one", async () => {
    expect((await kw.admin("DELETE", "/users/user104@example.com/credentials/cloud_ak")).status).toBe(204);
    await put("zz-new", "npm");
    const tail = await list(`?cursor=${encodeURIComponent((await list()).next_cursor)}`);
    expect(tail.items.map((i: Json) => i.user)).toEqual([...ids(104).slice(100), "zz-new"]);
    expect((await list("?credential=npm")).items).toEqual([
      { user: "zz-new", credentials: [{ name: "npm", version: 1, updated_at: expect.any(String) }] },
    ]);
  });

  it("never carried a value in any reply", () => {
    expect(replies.length).toBeGreaterThan(10);
    for (const text of replies) expect(text).not.toContain(CANARY);
  });
});
