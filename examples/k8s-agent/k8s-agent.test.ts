import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentProcess, startAgentProcess } from "../../packages/server/test-support/agent-process.js";
import { startWorkloadKeyward, type WorkloadKeyward } from "../../packages/server/test-support/cluster-issuer.js";

/**
 * The example as a pod runs it: `node examples/k8s-agent/agent.mjs` with KEYWARD_URL and the path
 * of its projected service-account token, and no key at all, against a real Keyward whose
 * `trusted_workloads` name the service account, and a cluster-like issuer (discovery, JWKS).
 */

const SCRIPT = join(import.meta.dirname, "agent.mjs");

let env: WorkloadKeyward;
let dir: string;
let agent: AgentProcess | undefined;

beforeAll(async () => {
  env = await startWorkloadKeyward();
  dir = mkdtempSync(join(tmpdir(), "kw-k8s-agent-"));
});
afterAll(async () => {
  await agent?.stop();
  await env?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("examples/k8s-agent", () => {
  it("starts with only the projected token, reads its credential, follows a rotation, never prints a secret", async () => {
    const tokenFile = join(dir, "token");
    const saToken = env.cluster.serviceAccountToken("research", "agent");
    writeFileSync(tokenFile, saToken);
    agent = await startAgentProcess(SCRIPT, { KEYWARD_URL: env.kw.url, KEYWARD_TOKEN_FILE: tokenFile, PORT: "0" });
    await agent.waitFor(/connected with the workload token; research_openai is sha256:[0-9a-f]{8}/);
    expect((await fetch(`${agent.url}/readyz`)).status).toBe(200);

    expect((await env.kw.admin("PUT", "/credentials/research_openai", { value: "sk-research-2" })).status).toBe(200);
    await agent.waitFor(/research_openai rotated to v2: sha256:[0-9a-f]{8}/);

    const output = agent.stdout() + agent.stderr();
    for (const secret of ["sk-research-1", "sk-research-2", saToken.split(".")[2] as string]) {
      expect(output).not.toContain(secret);
    }
  });
});
