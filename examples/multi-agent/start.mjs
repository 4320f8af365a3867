// Starts the three agents and registers them in a running Keyward:
//   KEYWARD_URL=http://127.0.0.1:8081 KEYWARD_ADMIN_TOKEN=… node examples/multi-agent/start.mjs
// then call the workflow through the gateway with the caller key it prints (see README.md).

import { keywardUrlFromEnv, requiredEnv, runIfMain, stopOnSignal } from "../shared/example-setup.mjs";
import { CALLER_SCOPES, setUpKeyward } from "./keyward-setup.mjs";
import { createResearchAgent } from "./research-agent.mjs";
import { openServer } from "./serve.mjs";
import { createToolsAgent } from "./tools-agent.mjs";
import { createWorkflowAgent } from "./workflow-agent.mjs";

/**
 * Listens for the three agents (port 0 = any free port), registers them in Keyward with those
 * URLs, grants `workflow` may_call research and tools, issues the workflow's agent key and a
 * caller key, and starts serving. `onRequest(agent, req)` hears every request an agent receives.
 */
export async function startExample({ keywardUrl, adminToken, ports = {}, consumer = "demo", onRequest }) {
  const names = ["workflow", "research", "tools"];
  const servers = {};
  try {
    for (const name of names) servers[name] = await openServer({ port: ports[name] ?? 0 });
    const { workflowKey, callerKey } = await setUpKeyward({
      keywardUrl,
      adminToken,
      consumer,
      upstreams: Object.fromEntries(names.map((n) => [n, servers[n].url])),
    });
    const listeners = {
      workflow: createWorkflowAgent({ keywardUrl, agentKey: workflowKey.secret }),
      research: createResearchAgent({ keywardUrl }),
      tools: createToolsAgent({ keywardUrl }),
    };
    for (const name of names) {
      const listener = listeners[name];
      servers[name].serve(
        onRequest
          ? (req, res) => {
              onRequest(name, req);
              listener(req, res);
            }
          : listener,
      );
    }
    return {
      urls: Object.fromEntries(names.map((n) => [n, servers[n].url])),
      workflowKey,
      callerKey,
      close: () => Promise.all(Object.values(servers).map((s) => s.close())).then(() => undefined),
    };
  } catch (err) {
    await Promise.all(Object.values(servers).map((s) => s.close()));
    throw err;
  }
}

runIfMain(import.meta.url, "multi-agent/start.mjs", async () => {
  const keywardUrl = keywardUrlFromEnv();
  const example = await startExample({
    keywardUrl,
    adminToken: requiredEnv(
      "KEYWARD_ADMIN_TOKEN",
      "an admin token of that Keyward (kwa_… or the one it was first started with)",
    ),
    ports: {
      workflow: Number(process.env.WORKFLOW_PORT ?? 0),
      research: Number(process.env.RESEARCH_PORT ?? 0),
      tools: Number(process.env.TOOLS_PORT ?? 0),
    },
    onRequest: (agent, req) => console.log(`${agent.padEnd(8)} <- ${req.method} ${req.url}`),
  });
  for (const [name, url] of Object.entries(example.urls)) console.log(`${name.padEnd(8)} agent listening on ${url}`);
  console.log(`caller key (consumer:demo, scopes ${CALLER_SCOPES.join(" ")}), shown once; in your shell:`);
  console.log(`export CALLER_KEY=${example.callerKey.secret}`);
  console.log("try:");
  console.log(
    `  curl -s ${keywardUrl}/agents/workflow/run -H "Authorization: Bearer $CALLER_KEY" -H "content-type: application/json" -d '{"question":"how does token exchange delegate between agents?"}'`,
  );
  stopOnSignal(example.close);
});
