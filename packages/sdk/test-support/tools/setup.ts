export { encodings } from "../redaction/secret-forms.js";

import { Keyward } from "../../src/client/keyward.js";
import type { ConnectOptions } from "../../src/client/options.js";
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

export async function collect(stream: AsyncIterable<unknown>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const c of stream) out.push(c);
  return out;
}
