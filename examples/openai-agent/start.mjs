// The whole example in one command, against a running Keyward:
//   KEYWARD_URL=http://127.0.0.1:8082 KEYWARD_ADMIN_TOKEN=… node examples/openai-agent/start.mjs --offline
// registers the agent, stores the OpenAI key as `openai_key`, grants it, issues the agent's own
// key and runs agent.mjs with that key alone. `--offline` starts the local OpenAI stand-in
// (../shared/openai-standin.mjs) with a made-up key and points the agent at it; without it, the
// key is read from OPENAI_API_KEY (this script's, never the agent's) and the agent calls OpenAI.
// PORT (default 4200) is the agent's port. Ctrl-C stops everything.
import { runOpenAIExample } from "../shared/openai-example.mjs";

const AGENT = "openai-agent";

runOpenAIExample({
  moduleUrl: import.meta.url,
  dir: import.meta.dirname,
  name: AGENT,
  defaultPort: 4200,
  standinNote: "it accepts only the key stored in Keyward",
  // The agent reads the key itself (read mode) and calls OpenAI, or the stand-in, with it.
  async store(admin, { openaiKey, standin }) {
    await admin("PUT", "/credentials/openai_key", { value: openaiKey });
    await admin("PUT", `/agents/${AGENT}/grants`, { credentials: [{ name: "openai_key", mode: "read" }] });
    return standin ? { OPENAI_BASE_URL: standin.baseURL } : {};
  },
});
