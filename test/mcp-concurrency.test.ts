import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { FetchLike } from "@modelcontextprotocol/sdk/shared/transport.js";
import { Agent, fetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectAs, resultText } from "../examples/mcp-tools/client.mjs";
import { startExample } from "../examples/mcp-tools/start.mjs";

/**
 * 50 users, each with their own key and cloud access key, calling the same MCP tool through one
 * Keyward at once: 1,000 `tools/call`, 20 per user, interleaved, half of them with another
 * user's id planted in the arguments. Every answer must be its own user's, and hold no key.
 */

const USERS = Array.from({ length: 50 }, (_, i) => {
  const id = `user-${String(i).padStart(2, "0")}`;
  return { id, functions: [`${id}-etl`, `${id}-report`] };
});
const CALLS_PER_USER = 20;
/**
 * Connections each user's client may open. With the global fetch every call in flight opens its
 * own, and 1,000 connects at once overflow the listen backlog (511): the kernel drops some and a
 * few end in ECONNRESET, a test of loopback TCP rather than of Keyward. An agent keeps a few.
 */
const CONNECTIONS_PER_USER = 5;

type Example = Awaited<ReturnType<typeof startExample>>;
let example: Example;
const clients = new Map<string, Client>();
const dispatchers: Agent[] = [];

beforeAll(async () => {
  // One process: with a worker per core each worker starts its own process per user (100 node
  // processes at once on a 2-core CI machine). And 50 users' processes start together here, which
  // on a loaded 2-core machine can take longer than the 15 s default: this test is about whose
  // data each call sees, not how fast 50 processes start.
  example = await startExample({ users: USERS, workers: 1, mcp: { max_processes: 60, start_timeout_ms: 60_000 } });
  for (const u of USERS) {
    const dispatcher = new Agent({ connections: CONNECTIONS_PER_USER });
    dispatchers.push(dispatcher);
    // The MCP SDK passes Node's global RequestInit, whose dispatcher type (undici-types) is not
    // undici's own: the dispatcher is replaced anyway, so the rest is what undici's fetch gets.
    const userFetch: FetchLike = (url, init) => {
      const { dispatcher: _replaced, ...rest } = init ?? {};
      return fetch(url, { ...rest, dispatcher });
    };
    clients.set(u.id, await connectAs(example.mcpUrl, example.users[u.id]?.key as string, { fetch: userFetch }));
  }
}, 120_000);
afterAll(async () => {
  await Promise.all([...clients.values()].map((c) => c.close()));
  await Promise.all(dispatchers.map((d) => d.close()));
  await example?.close();
});

/** The leak forms of every user's access key, with whose it is. */
function allKeyForms(): Array<[string, string]> {
  return USERS.flatMap((u) => {
    const key = example.users[u.id]?.accessKey as string;
    const b = Buffer.from(key);
    return [key, b.toString("base64"), b.toString("hex"), encodeURIComponent(key)].map(
      (f) => [u.id, f] as [string, string],
    );
  });
}

describe("MCP gateway under 1,000 concurrent tool calls from 50 users", () => {
  it("answers every call with its own user's account and never another's data or any key", async () => {
    const before = example.cloud.requests.length;
    const calls: Array<{ user: string; planted?: string }> = [];
    for (let round = 0; round < CALLS_PER_USER; round++) {
      for (const [i, u] of USERS.entries()) {
        const other = USERS[(i + round + 1) % USERS.length]?.id as string;
        calls.push(round % 2 === 0 ? { user: u.id } : { user: u.id, planted: other });
      }
    }
    const results = await Promise.all(
      calls.map(async ({ user, planted }) => {
        const client = clients.get(user) as Client;
        const result = await client.callTool({
          name: "list_functions",
          arguments: planted ? { user_id: planted } : {},
        });
        return { user, result, text: resultText(result) };
      }),
    );

    const forms = allKeyForms();
    const wrong: string[] = [];
    for (const { user, result, text } of results) {
      if (result.isError) {
        wrong.push(`${user}: tool error ${text.slice(0, 200)}`);
        continue;
      }
      const body = JSON.parse(text);
      if (
        body.account !== user ||
        JSON.stringify(body.functions) !== JSON.stringify([`${user}-etl`, `${user}-report`])
      ) {
        wrong.push(`${user}: got ${body.account} ${JSON.stringify(body.functions)}`);
      }
      // No other user's name anywhere (user-07 is not a prefix of another id: all are 2 digits).
      const others = USERS.filter((u) => u.id !== user && text.includes(u.id)).map((u) => u.id);
      if (others.length > 0) wrong.push(`${user}: saw ${others.join(", ")}`);
      const leaked = forms.filter(([, form]) => text.includes(form)).map(([owner]) => owner);
      if (leaked.length > 0) wrong.push(`${user}: holds the access key of ${leaked.join(", ")}`);
    }
    expect(wrong).toEqual([]);
    expect(results).toHaveLength(USERS.length * CALLS_PER_USER);

    // The cloud saw each user's own key exactly as often as that user called.
    const seen = new Map<string, number>();
    for (const key of example.cloud.requests.slice(before)) seen.set(String(key), (seen.get(String(key)) ?? 0) + 1);
    const expected = new Map(USERS.map((u) => [example.users[u.id]?.accessKey as string, CALLS_PER_USER]));
    expect(seen).toEqual(expected);
  }, 120_000);
});
