import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Clock } from "../src/clock.js";
import { type OidcIssuer, type SignOptions, startOidcIssuer } from "./oidc-issuer.js";
import { startTestServer, type TestServer } from "./server.js";

/** The audience a pod's projected token is minted for (deploy/k8s/agent/agent-workload-identity.yaml). */
export const KEYWARD_AUDIENCE = "keyward";

/** A Kubernetes API server as an OIDC issuer: discovery, JWKS at `/openid/v1/jwks`, rotatable keys. */
export interface ClusterIssuer extends OidcIssuer {
  /**
   * A projected service-account token: `sub` = `system:serviceaccount:<ns>:<sa>`, the
   * `kubernetes.io` claim, `aud` = Keyward's, 1 h life, unless `claims` say otherwise.
   */
  serviceAccountToken(ns: string, sa: string, claims?: Record<string, unknown>, opts?: SignOptions): string;
}

export async function startClusterIssuer(): Promise<ClusterIssuer> {
  const issuer = await startOidcIssuer({ jwksPath: "/openid/v1/jwks" });
  return Object.assign(issuer, {
    serviceAccountToken(ns: string, sa: string, claims: Record<string, unknown> = {}, opts: SignOptions = {}) {
      const nowS = Math.floor(Date.now() / 1000);
      return issuer.sign(
        {
          sub: `system:serviceaccount:${ns}:${sa}`,
          aud: [KEYWARD_AUDIENCE],
          nbf: nowS,
          exp: nowS + 3600,
          "kubernetes.io": { namespace: ns, serviceaccount: { name: sa, uid: "0b6f…" }, pod: { name: `${sa}-1` } },
          ...claims,
        },
        opts,
      );
    },
  });
}

export interface WorkloadKeyward {
  kw: TestServer;
  cluster: ClusterIssuer;
  /** A second cluster, configured for agent `other`. */
  otherCluster: ClusterIssuer;
  close(): Promise<void>;
}

/**
 * Keyward with `trusted_workloads`: `research/agent` of `cluster` is agent `research` (holding
 * the read credential `research_openai` = `sk-research-1`), `ops/runner` of `otherCluster` is
 * agent `other`, and a GitHub-Actions-style rule (claims `repository`, `ref`) on `cluster` maps to
 * agent `ci`.
 */
export async function startWorkloadKeyward(opts: { clock?: Clock } = {}): Promise<WorkloadKeyward> {
  const [cluster, otherCluster] = await Promise.all([startClusterIssuer(), startClusterIssuer()]);
  const dir = mkdtempSync(join(tmpdir(), "kw-workloads-"));
  const configFile = join(dir, "keyward.json");
  writeFileSync(
    configFile,
    JSON.stringify({
      trusted_workloads: [
        {
          issuer: cluster.url,
          jwks_uri: cluster.jwksUri,
          audience: KEYWARD_AUDIENCE,
          agent: "research",
          subject: "system:serviceaccount:research:agent",
          scopes: ["agent:other"],
        },
        {
          issuer: otherCluster.url,
          jwks_uri: otherCluster.jwksUri,
          audience: KEYWARD_AUDIENCE,
          agent: "other",
          subject: "system:serviceaccount:ops:runner",
        },
        {
          issuer: cluster.url,
          jwks_uri: cluster.jwksUri,
          audience: "keyward-ci",
          agent: "ci",
          claims: { repository: "acme/agents", ref: "refs/heads/main" },
        },
      ],
    }),
  );
  const kw = await startTestServer({}, { configFile, ...(opts.clock ? { clock: opts.clock } : {}) });
  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await kw.admin(method, path, body);
    if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status} ${JSON.stringify(res.body)}`);
  };
  for (const name of ["research", "other", "ci"])
    await admin("POST", "/agents", { name, upstream: "http://127.0.0.1:9" });
  await admin("PUT", "/credentials/research_openai", { value: "sk-research-1" });
  await admin("PUT", "/agents/research/grants", {
    credentials: [{ name: "research_openai", mode: "read" }],
    may_call: ["other"],
  });
  return {
    kw,
    cluster,
    otherCluster,
    async close() {
      await kw.close();
      await Promise.all([cluster.close(), otherCluster.close()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
