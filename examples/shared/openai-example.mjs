// What the two OpenAI examples' start scripts share: the --offline flag, the OpenAI key (the local
// stand-in's made-up one, or OPENAI_API_KEY), the agent registered at its port, its own Keyward
// key, the agent run with that key alone, and everything stopped together.
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
} from "./example-setup.mjs";
import { newStandinKey, startOpenAIStandin } from "./openai-standin.mjs";

/**
 * Runs `<dir>/agent.mjs` as the agent `name` when `moduleUrl` is the script node was started with.
 * `store(admin, {openaiKey, standin})` stores the key and grants it the example's way, and returns
 * what the agent's environment needs besides its Keyward URL, key and port.
 */
export function runOpenAIExample({ moduleUrl, dir, name, defaultPort, standinNote, store }) {
  runIfMain(moduleUrl, `${name}/start.mjs`, async () => {
    let offline;
    try {
      offline = parseArgs({ options: { offline: { type: "boolean", default: false } } }).values.offline;
    } catch (err) {
      throw new ExampleError(`${err.message} (the one flag is --offline)`);
    }
    const keywardUrl = keywardUrlFromEnv();
    const admin = adminClient(keywardUrl, requiredEnv("KEYWARD_ADMIN_TOKEN", "an admin token of that Keyward"));
    const port = Number(process.env.PORT ?? defaultPort);

    let standin;
    let openaiKey;
    if (offline) {
      openaiKey = newStandinKey();
      standin = await startOpenAIStandin({ keys: [openaiKey] });
      console.log(`OpenAI stand-in listening on ${standin.url} (offline: ${standinNote})`);
    } else {
      openaiKey = requiredEnv("OPENAI_API_KEY", "your OpenAI key, to store in Keyward (or pass --offline)");
    }

    try {
      // The upstream is where the agent will listen; the gateway route /agents/<name>/… uses it.
      await upsertAgent(admin, name, `http://127.0.0.1:${port}`, `${name} example`);
      const extraEnv = await store(admin, { openaiKey, standin });
      const { body } = await admin("POST", "/keys", { owner: `agent:${name}`, name: `${name} example`, scopes: [] });
      const agent = await startAgent(join(dir, "agent.mjs"), {
        KEYWARD_URL: keywardUrl,
        KEYWARD_AGENT_KEY: body.secret,
        PORT: String(port),
        ...extraEnv,
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
}
