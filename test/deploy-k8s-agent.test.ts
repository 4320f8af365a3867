import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";

/**
 * deploy/k8s/agent (issue 16 item 4): an agent with no static secret, as a kustomize Component of
 * Keyward's manifests. deploy/k8s alone stays the server; with the component enabled, kustomize
 * (through kubectl, where installed) renders Keyward reading its config file and the agent with
 * its projected token.
 */
const ROOT = join(import.meta.dirname, "..");
const read = (path: string) => readFileSync(join(ROOT, path), "utf8");
const KUBECTL = spawnSync("kubectl", ["version", "--client"], { stdio: "ignore" }).status === 0;
if (!KUBECTL) console.warn("deploy-k8s-agent.test: kustomize rendering skipped, kubectl is not installed");

// biome-ignore lint/suspicious/noExplicitAny: rendered YAML is checked field by field below
type Doc = any;
function kustomize(dir: string): Doc[] {
  const r = spawnSync("kubectl", ["kustomize", dir], { encoding: "utf8" });
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  return parseAllDocuments(r.stdout).map((d) => d.toJS());
}

describe("deploy/k8s/agent", () => {
  it("is a Component that deploy/k8s leaves out until asked", () => {
    const agent = parse(read("deploy/k8s/agent/kustomization.yaml"));
    expect(agent.kind).toBe("Component");
    const base = parse(read("deploy/k8s/kustomization.yaml"));
    expect(base.components).toBeUndefined();
    expect(base.resources).not.toContain("agent");
    expect(read("deploy/k8s/kustomization.yaml")).toMatch(/^# components:\n# {3}- agent$/m);
  });

  it.skipIf(!KUBECTL)("renders the server alone by default, and with the agent once uncommented", () => {
    const alone = kustomize(join(ROOT, "deploy/k8s"));
    expect(alone.map((d) => d.metadata.name)).not.toContain("research-agent");
    const dir = mkdtempSync(join(tmpdir(), "kw-k8s-"));
    try {
      cpSync(join(ROOT, "deploy/k8s"), dir, { recursive: true });
      const file = join(dir, "kustomization.yaml");
      writeFileSync(file, readFileSync(file, "utf8").replace("# components:\n#   - agent", "components:\n  - agent"));
      const docs = kustomize(dir);
      const named = (kind: string, name: string) => docs.find((d) => d.kind === kind && d.metadata.name === name);
      const keyward = named("Deployment", "keyward").spec.template.spec;
      expect(keyward.containers[0].args).toEqual(["serve", "--config", "/etc/keyward/keyward.yaml"]);
      expect(keyward.volumes).toContainEqual({ name: "config", configMap: { name: "keyward-config" } });
      expect(named("ConfigMap", "keyward-config").data["keyward.yaml"]).toContain(
        "subject: system:serviceaccount:research:agent",
      );
      const pod = named("Deployment", "research-agent").spec.template.spec;
      expect(pod.serviceAccountName).toBe("agent");
      const projected = pod.volumes.flatMap((v: Doc) => v.projected?.sources ?? []);
      expect(projected).toContainEqual({ serviceAccountToken: expect.objectContaining({ audience: "keyward" }) });
      // No static secret reaches the agent.
      expect(JSON.stringify(pod)).not.toMatch(/secretKeyRef|kwk_/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
