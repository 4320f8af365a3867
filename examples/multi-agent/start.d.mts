// Types for start.mjs (plain JavaScript, so the example runs with node alone).
import type { IncomingMessage } from "node:http";

export interface IssuedKey {
  id: string;
  /** Shown once: returned to the caller only, never logged. */
  secret: string;
}

export interface RunningAgents {
  /** Agent name (workflow, research, tools) → the URL it listens on. */
  urls: Record<"workflow" | "research" | "tools", string>;
  /** The workflow agent's own key (owner `agent:workflow`). */
  workflowKey: IssuedKey;
  /** A key of the consumer, with the scopes to call the workflow. */
  callerKey: IssuedKey;
  close(): Promise<void>;
}

export function startExample(opts: {
  keywardUrl: string;
  adminToken: string;
  /** Agent name → port; 0 or missing: any free port. */
  ports?: Partial<Record<"workflow" | "research" | "tools", number>>;
  consumer?: string;
  /** Hears every request an agent receives. */
  onRequest?: (agent: string, req: IncomingMessage) => unknown;
}): Promise<RunningAgents>;
