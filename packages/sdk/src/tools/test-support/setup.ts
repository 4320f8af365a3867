import { Keyward } from "../../client/keyward.js";
import type { ConnectOptions } from "../../client/options.js";
import { FakeToolsServer } from "./fake-tools-server.js";

/** A fake Keyward for the tool endpoints and a client connected to it; `close` ends both. */
export async function startTools(
  opts: Partial<ConnectOptions> = {},
): Promise<{ fake: FakeToolsServer; kw: Keyward; close(): Promise<void> }> {
  const fake = await new FakeToolsServer().start();
  const kw = await Keyward.connect({ url: fake.url, token: fake.agentToken, ...opts });
  return {
    fake,
    kw,
    async close() {
      await kw.close();
      await fake.close();
    },
  };
}

/** Every encoding the SPEC names (and JSON escapes), to plant in tool output. */
export function encodings(secret: string): Record<string, string> {
  const raw = Buffer.from(secret, "utf8");
  return {
    raw: secret,
    base64: raw.toString("base64"),
    base64url: raw.toString("base64url"),
    hex: raw.toString("hex"),
    url: encodeURIComponent(secret),
    json: JSON.stringify(secret).slice(1, -1),
  };
}

export async function collect(stream: AsyncIterable<unknown>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const c of stream) out.push(c);
  return out;
}
