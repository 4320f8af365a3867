// The whole example in one command, against a running Keyward:
//   KEYWARD_URL=http://127.0.0.1:8083 KEYWARD_ADMIN_TOKEN=… node examples/egress-agent/start.mjs --offline
// registers the agent, stores the OpenAI key as `openai_key` with its egress target, grants it in
// inject mode, issues the agent's own key and runs agent.mjs with that key alone. `--offline`
// starts the local OpenAI stand-in (../shared/openai-standin.mjs) with a made-up key and makes it
// the credential's egress target; without it, the key is read from OPENAI_API_KEY (this
// script's, never the agent's) and the target is api.openai.com. Either way the agent never holds
// the key. PORT (default 4300) is the agent's port. Ctrl-C stops everything.
import { runOpenAIExample } from "../shared/openai-example.mjs";

const AGENT = "egress-agent";

runOpenAIExample({
  moduleUrl: import.meta.url,
  dir: import.meta.dirname,
  name: AGENT,
  defaultPort: 4300,
  standinNote: "it accepts only the key Keyward injects",
  // The key never reaches the agent: Keyward's egress proxy injects it (inject mode) on the way to
  // the credential's egress target.
  async store(admin, { openaiKey, standin }) {
    const baseUrl = standin ? standin.url : "https://api.openai.com";
    await admin("PUT", "/credentials/openai_key", { value: openaiKey, egress: { base_url: baseUrl } });
    await admin("PUT", `/agents/${AGENT}/grants`, { credentials: [{ name: "openai_key", mode: "inject" }] });
    return {};
  },
});
