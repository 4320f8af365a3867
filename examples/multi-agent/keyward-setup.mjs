// Registers the example in a running Keyward through its admin API. Safe to run again: existing
// agents get their upstream updated, the consumer is reused, and fresh keys are issued.
import { adminClient } from "../shared/example-setup.mjs";

/** The scopes of the demo caller's key: it may use all three agents. */
export const CALLER_SCOPES = ["agent:workflow", "agent:research", "agent:tools"];

const DESCRIPTIONS = {
  workflow: "multi-agent example: combines research and tools on the caller's behalf",
  research: "multi-agent example: searches a small library (Express)",
  tools: "multi-agent example: text statistics over LangServe /invoke (Hono)",
};

/**
 * `upstreams` maps each agent name (workflow, research, tools) to the URL its server listens on.
 * Returns the workflow agent's key (its actor token for exchanges) and a caller key for the
 * consumer, each as `{id, secret}`. Secrets are returned to the caller only, never logged here.
 */
export async function setUpKeyward({ keywardUrl, adminToken, upstreams, consumer = "demo" }) {
  const admin = adminClient(keywardUrl, adminToken);
  for (const [name, upstream] of Object.entries(upstreams)) {
    const created = await admin("POST", "/agents", { name, upstream, description: DESCRIPTIONS[name] }, [201, 409]);
    if (created.status === 409) await admin("PATCH", `/agents/${name}`, { upstream }, [200]);
  }
  await admin("POST", "/consumers", { name: consumer }, [201, 409]);

  // may_call, not a scope on the workflow's key, decides which agents it may exchange tokens for.
  await admin("PUT", "/agents/workflow/grants", { credentials: [], may_call: ["research", "tools"] }, [200, 201]);
  const workflowKey = await admin(
    "POST",
    "/keys",
    { owner: "agent:workflow", name: "workflow actor key", scopes: [] },
    [201],
  );
  const callerKey = await admin(
    "POST",
    "/keys",
    { owner: `consumer:${consumer}`, name: "multi-agent example caller", scopes: CALLER_SCOPES },
    [201],
  );
  return {
    workflowKey: { id: workflowKey.body.key.id, secret: workflowKey.body.secret },
    callerKey: { id: callerKey.body.key.id, secret: callerKey.body.secret },
  };
}
