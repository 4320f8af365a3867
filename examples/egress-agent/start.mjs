// The whole example in one command, against a running Keyward:
//   KEYWARD_URL=http://127.0.0.1:8083 KEYWARD_ADMIN_TOKEN=… node examples/egress-agent/start.mjs --offline
// registers the agent, stores the OpenAI key as `openai_key` with its egress target, grants it in
// inject mode, issues the agent's own key and runs agent.mjs with that key alone. `--offline`
// starts the local OpenAI stand-in (../shared/openai-standin.mjs) with a made-up key and makes it
// the credential's egress target; without it, the key is read from OPENAI_API_KEY (this
// script's, never the agent's) and the target is api.openai.com. Either way the agent never holds
// the key. PORT (default 4300) is the agent's port. Ctrl-C stops everything.
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  adminClient,
  ExampleError,
  keywardUrlFromEnv,
  requiredEnv,
  runIfMain,
  startAgent,
  stopOnSignal,
  upsertAgent,
} from "../shared/example-setup.mjs";
import { newStandinKey, startOpenAIStandin } from "../shared/openai-standin.mjs";

const AGENT = "egress-agent";

runIfMain(import.meta.url, "egress-agent/start.mjs", async () => {
  let offline;
  try {
    offline = parseArgs({ options: { offline: { type: "boolean", default: false } } }).values.offline;
  } catch (err) {
    throw new ExampleError(`${err.message} (the one flag is --offline)`);
  }
  const keywardUrl = keywardUrlFromEnv();
  const admin = adminClient(keywardUrl, requiredEnv("KEYWARD_ADMIN_TOKEN", "an admin token of that Keyward"));
  const port = Number(process.env.PORT ?? 4300);

  let standin;
  let openaiKey;
  if (offline) {
    openaiKey = newStandinKey();
    standin = await startOpenAIStandin({ keys: [openaiKey] });
    console.log(`OpenAI stand-in listening on ${standin.url} (offline: it accepts only the key Keyward injects)`);
  } else {
    openaiKey = requiredEnv("OPENAI_API_KEY", "your OpenAI key, to store in Keyward (or pass --offline)");
  }

  try {
    // The upstream is where the agent will listen; the gateway route /agents/egress-agent/… uses it.
    await upsertAgent(admin, AGENT, `http://127.0.0.1:${port}`, "egress-agent example");
    const baseUrl = standin ? standin.url : "https://api.openai.com";
    await admin("PUT", "/credentials/openai_key", { value: openaiKey, egress: { base_url: baseUrl } });
    await admin("PUT", `/agents/${AGENT}/grants`, { credentials: [{ name: "openai_key", mode: "inject" }] });
    const { body } = await admin("POST", "/keys", {
      owner: `agent:${AGENT}`,
      name: "egress-agent example",
      scopes: [],
    });
    const agent = await startAgent(join(import.meta.dirname, "agent.mjs"), {
      KEYWARD_URL: keywardUrl,
      KEYWARD_AGENT_KEY: body.secret,
      PORT: String(port),
    });
    console.log("try:");
    console.log(
      `  curl -s ${agent.url}/chat -H 'content-type: application/json' -d '{"message":"Say hello in French"}'`,
    );
    stopOnSignal(agent.stop, standin?.close);
    // The agent stopping on its own ends the example too.
    agent.exited.then(async (code) => {
      await standin?.close();
      process.exit(code === 0 ? 0 : 1);
    });
  } catch (err) {
    await standin?.close();
    throw err;
  }
});
