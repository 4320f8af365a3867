import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { type AddressInfo, BlockList } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { loadConfig } from "../packages/server/src/config.js";
import { loadMasterKey } from "../packages/server/src/crypto/master-key.js";

/**
 * The deployment files users copy (Dockerfile, docker-compose.yml, deploy/): Docker and a cluster
 * are not available where these tests run, so they check what can be checked without them — the
 * files parse, the settings they pass are ones `keyward serve` accepts, and the invariants a
 * careless edit would break (non-root, probes, secrets kept out of the files, both replicas
 * behind the load balancer) hold. nginx's own `nginx -t` checks the load balancer's config.
 */

const ROOT = join(import.meta.dirname, "..");
const read = (path: string) => readFileSync(join(ROOT, path), "utf8");
// biome-ignore lint/suspicious/noExplicitAny: parsed YAML is checked field by field below
type Doc = any;

/** The environment names of SPEC §1, spelled exactly as the contract spells them. */
const SPEC_ENV = [
  "KEYWARD_PORT",
  "KEYWARD_HOST",
  "KEYWARD_DATA_DIR",
  "KEYWARD_DATABASE_URL",
  "KEYWARD_REDIS_URL",
  "KEYWARD_MASTER_KEY",
  "KEYWARD_ADMIN_TOKEN",
  "KEYWARD_ISSUER",
];
/** Settings whose values are secrets (or URLs that carry passwords): never literal in a file. */
const SECRET_ENV = [
  "KEYWARD_DATABASE_URL",
  "KEYWARD_REDIS_URL",
  "KEYWARD_MASTER_KEY",
  "KEYWARD_ADMIN_TOKEN",
  "KEYWARD_METRICS_TOKEN",
];

/** The KEYWARD_* names config.ts reads (its ENV table), so a misspelt name in a file is caught. */
function acceptedEnvNames(): Set<string> {
  const block = /const ENV[^=]*=\s*\{([\s\S]*?)\n\};/.exec(read("packages/server/src/config.ts"))?.[1];
  if (!block) throw new Error("cannot find the ENV table in config.ts");
  return new Set([...block.matchAll(/^\s*(KEYWARD_[A-Z0-9_]+):/gm)].map((m) => m[1] as string));
}

/** Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}`; a missing required variable throws. */
function interpolate(value: string, vars: Record<string, string>): string {
  return value.replace(/\$\{([A-Z0-9_]+)(?::([-?])([^}]*))?\}/g, (_, name: string, op?: string, arg?: string) => {
    const v = vars[name];
    if (v !== undefined && v !== "") return v;
    if (op === "?") throw new Error(`required variable ${name} is missing: ${arg}`);
    return op === "-" ? (arg ?? "") : "";
  });
}

/** A .env as docs/deployment.md generates it. */
const dotEnv = () => ({
  KEYWARD_MASTER_KEY: randomBytes(32).toString("base64"),
  KEYWARD_ADMIN_TOKEN: randomBytes(36).toString("base64"),
  POSTGRES_PASSWORD: randomBytes(24).toString("hex"),
});

interface Instruction {
  op: string;
  args: string;
}

/** Dockerfile instructions per stage (continuation lines joined, comments dropped). */
function dockerStages(): Instruction[][] {
  const lines = read("Dockerfile")
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  const stages: Instruction[][] = [];
  for (const line of lines) {
    const [op = "", ...rest] = line.split(/\s+/);
    const ins = { op: op.toUpperCase(), args: rest.join(" ") };
    if (ins.op === "FROM") stages.push([]);
    stages.at(-1)?.push(ins);
  }
  return stages;
}

const runtimeStage = () => dockerStages().at(-1) ?? [];
const instr = (stage: Instruction[], op: string) => stage.filter((i) => i.op === op);

describe("Dockerfile", () => {
  it("builds in one stage and runs a slim node 20 image as a numeric, non-root user", () => {
    const stages = dockerStages();
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const runtime = runtimeStage();
    expect(runtime[0]?.args).toMatch(/^node:20[-.\w]*slim\b/);
    const user = instr(runtime, "USER").at(-1)?.args ?? "";
    // Numeric: Kubernetes' runAsNonRoot cannot verify a user given by name.
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(Number(user.split(":")[0])).toBeGreaterThan(0);
  });

  it("copies every workspace the lockfile names into the build, and the runtime's compiled files", () => {
    const build = dockerStages()[0] ?? [];
    const copied = instr(build, "COPY").map((i) => i.args);
    const workspaces = JSON.parse(read("package.json")).workspaces as string[];
    expect(copied.some((c) => c.includes("package-lock.json"))).toBe(true);
    for (const ws of workspaces) {
      expect(copied.some((c) => c.startsWith(`${ws}/package.json `))).toBe(true);
      expect(copied.some((c) => c.startsWith(`${ws}/src `))).toBe(true);
    }
    const runtimeCopies = instr(runtimeStage(), "COPY").map((i) => i.args);
    for (const path of ["node_modules", "packages/server/package.json", "packages/server/dist"]) {
      expect(runtimeCopies.some((c) => c.includes(`/src/${path} `))).toBe(true);
    }
  });

  it("listens on all interfaces and runs `keyward serve`", () => {
    const runtime = runtimeStage();
    const env = instr(runtime, "ENV")
      .map((i) => i.args)
      .join(" ");
    expect(env).toMatch(/KEYWARD_HOST=0\.0\.0\.0/);
    const port = /KEYWARD_PORT=(\d+)/.exec(env)?.[1];
    expect(instr(runtime, "EXPOSE")[0]?.args).toBe(port);
    expect(instr(runtime, "ENTRYPOINT")[0]?.args).toBe('["keyward"]');
    expect(instr(runtime, "CMD")[0]?.args).toBe('["serve"]');
  });

  it("has a health check that passes when /healthz answers 200 and fails otherwise", async () => {
    const health = instr(runtimeStage(), "HEALTHCHECK")[0]?.args ?? "";
    const command = JSON.parse(/\bCMD\s+(\[.*\])$/.exec(health)?.[1] ?? "null") as string[];
    expect(command.slice(0, 2)).toEqual(["node", "-e"]);
    let status = 200;
    const paths: string[] = [];
    const server = createServer((req, res) => {
      paths.push(req.url ?? "");
      res.writeHead(status).end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = String((server.address() as AddressInfo).port);
    const run = () =>
      new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, command.slice(1), {
          env: { KEYWARD_PORT: port },
          stdio: "ignore",
        });
        child.on("exit", resolve);
      });
    try {
      expect(await run()).toBe(0);
      status = 503;
      expect(await run()).toBe(1);
      expect(paths).toEqual(["/healthz", "/healthz"]);
    } finally {
      server.close();
    }
    server.closeAllConnections();
    expect(await run()).toBe(1); // nothing listening
  });

  it("keeps data dirs, .env files and node_modules out of the build context", () => {
    const ignored = read(".dockerignore").split("\n");
    for (const entry of ["**/.keyward", ".env", "**/node_modules"]) expect(ignored).toContain(entry);
  });
});

const compose = (): Doc => parse(read("docker-compose.yml"), { merge: true });
const replicaNames = (c: Doc) => Object.keys(c.services).filter((n) => c.services[n].build !== undefined);

describe("docker-compose.yml", () => {
  it("runs two replicas of the image with the same settings, on PostgreSQL and Redis", () => {
    const c = compose();
    const replicas = replicaNames(c);
    expect(replicas).toEqual(["keyward-1", "keyward-2"]);
    const [a, b] = replicas.map((n) => c.services[n]);
    expect(a.environment).toEqual(b.environment);
    expect(a.environment.KEYWARD_DATABASE_URL).toMatch(/^postgres:\/\/[^@]+@postgres:5432\//);
    expect(a.environment.KEYWARD_REDIS_URL).toBe("redis://redis:6379");
    for (const dep of ["postgres", "redis"]) {
      expect(a.depends_on[dep]).toEqual({ condition: "service_healthy" });
      expect(c.services[dep].healthcheck.test).toBeDefined();
    }
    expect(a.user).toBeUndefined(); // the image's non-root user
    // Draining takes up to shutdown_timeout_ms (10 s) before the flush: leave room for both.
    expect(Number(/^(\d+)s$/.exec(a.stop_grace_period)?.[1])).toBeGreaterThanOrEqual(15);
  });

  it("takes every secret from the environment (.env), none written in the file", () => {
    const c = compose();
    for (const service of Object.values<Doc>(c.services)) {
      for (const [name, value] of Object.entries<string>(service.environment ?? {})) {
        if (/MASTER_KEY|ADMIN_TOKEN|METRICS_TOKEN|PASSWORD/.test(name))
          expect(value).toMatch(/^\$\{[A-Z_]+:[?-][^}]*\}$/);
        // A password inside a URL is interpolated too.
        const password = /^\w+:\/\/[^:/@]+:([^@]*)@/.exec(String(value))?.[1];
        if (password !== undefined) expect(password).toMatch(/^\$\{[A-Z_]+:\?[^}]*\}$/);
      }
    }
    const env = c.services["keyward-1"].environment as Record<string, string>;
    expect(() => interpolate(env.KEYWARD_MASTER_KEY as string, {})).toThrow(/KEYWARD_MASTER_KEY/);
    expect(() => interpolate(env.KEYWARD_ADMIN_TOKEN as string, {})).toThrow(/KEYWARD_ADMIN_TOKEN/);
  });

  it("passes settings keyward serve accepts, with the issuer and trusted proxy a cluster needs", () => {
    const c = compose();
    const vars = dotEnv();
    const env = Object.fromEntries(
      Object.entries<string>(c.services["keyward-1"].environment).map(([k, v]) => [k, interpolate(String(v), vars)]),
    );
    const cfg = loadConfig({ env });
    expect(cfg.database_url).toContain(`:${vars.POSTGRES_PASSWORD}@`);
    expect(cfg.issuer).toBe("http://localhost:8080");
    expect(
      loadMasterKey({ fromEnv: env.KEYWARD_MASTER_KEY, dataDir: "/nonexistent", requireExplicit: true, warn() {} }),
    ).toHaveLength(32);

    // Only nginx may set X-Forwarded-For: its fixed address, outside the range others get.
    const nginxIp = c.services.nginx.networks.keyward.ipv4_address as string;
    expect(cfg.trusted_proxies).toEqual([`${nginxIp}/32`]);
    const { subnet, ip_range } = c.networks.keyward.ipam.config[0];
    const inRange = (cidr: string) => {
      const [net, bits] = cidr.split("/") as [string, string];
      const list = new BlockList();
      list.addSubnet(net, Number(bits));
      return list.check(nginxIp);
    };
    expect(inRange(subnet)).toBe(true);
    expect(inRange(ip_range)).toBe(false);
  });

  it("puts nginx in front of both replicas, once they are healthy", () => {
    const c = compose();
    const nginx = c.services.nginx;
    expect(nginx.volumes).toContain("./deploy/nginx.conf:/etc/nginx/nginx.conf:ro");
    for (const r of replicaNames(c)) expect(nginx.depends_on[r]).toEqual({ condition: "service_healthy" });
    const port = c.services["keyward-1"].environment.KEYWARD_PORT;
    const servers = [...upstreamBlock().matchAll(/^\s*server\s+([\w.-]+:\d+)/gm)].map((m) => m[1]);
    expect(servers).toEqual(replicaNames(c).map((r) => `${r}:${port}`));
    const listen = /^\s*listen\s+(\d+);/m.exec(read("deploy/nginx.conf"))?.[1];
    expect(nginx.ports).toEqual([`\${KEYWARD_PUBLIC_PORT:-8080}:${listen}`]);
  });
});

function upstreamBlock(): string {
  const block = /upstream keyward \{([^}]*)\}/.exec(read("deploy/nginx.conf"))?.[1];
  if (block === undefined) throw new Error("no `upstream keyward` block in deploy/nginx.conf");
  return block;
}

function findNginx(): string | undefined {
  for (const bin of ["nginx", "/usr/sbin/nginx", "/usr/local/sbin/nginx"]) {
    if (spawnSync(bin, ["-v"], { stdio: "ignore" }).status === 0) return bin;
  }
  return undefined;
}
const NGINX = findNginx();
const mustRunNginx = Boolean(process.env.CI);
if (!NGINX && !mustRunNginx) console.warn("deploy-files.test: nginx -t skipped, nginx is not installed");

describe("deploy/nginx.conf", () => {
  it("proxies to the upstream without buffering, so streams pass as they are produced", () => {
    const conf = read("deploy/nginx.conf");
    expect(conf).toMatch(/proxy_pass http:\/\/keyward;/);
    expect(conf).toMatch(/proxy_buffering off;/);
    expect(conf).toMatch(/proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;/);
  });

  it.skipIf(!NGINX && !mustRunNginx)("passes nginx -t (replica names mapped to loopback)", () => {
    if (!NGINX) throw new Error("nginx is required when CI is set (apt-get install nginx)");
    const dir = mkdtempSync(join(tmpdir(), "keyward-deploy-nginx-"));
    try {
      // Outside compose the replica names do not resolve (nginx resolves upstreams at load), and
      // the logs go to the temp dir instead of the image's links to stdout and stderr.
      const conf = read("deploy/nginx.conf")
        .replace(/(^\s*server\s+)[\w-]+(:\d+)/gm, "$1127.0.0.1$2")
        .replaceAll("/var/log/nginx/", `${dir}/`);
      writeFileSync(join(dir, "nginx.conf"), conf);
      const r = spawnSync(
        NGINX,
        ["-t", "-p", dir, "-c", join(dir, "nginx.conf"), "-e", join(dir, "error.log"), "-g", `pid ${dir}/nginx.pid;`],
        { encoding: "utf8" },
      );
      expect(r.stderr).toContain("test is successful");
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const K8S = "deploy/k8s";
function k8s(): Map<string, Doc> {
  const byKind = new Map<string, Doc>();
  for (const file of readdirSync(join(ROOT, K8S)).filter((f) => f.endsWith(".yaml"))) {
    for (const doc of parseAllDocuments(read(`${K8S}/${file}`))) {
      expect(doc.errors).toEqual([]);
      const obj = doc.toJS();
      byKind.set(obj.kind, { ...obj, file });
    }
  }
  return byKind;
}
const container = (m: Map<string, Doc>) => m.get("Deployment").spec.template.spec.containers[0];

describe("deploy/k8s", () => {
  it("applies everything but the example Secret with kustomize", () => {
    const m = k8s();
    expect([...m.keys()].sort()).toEqual([
      "ConfigMap",
      "Deployment",
      "Kustomization",
      "PodDisruptionBudget",
      "Secret",
      "Service",
    ]);
    const applied = [...m.values()].filter((d) => d.kind !== "Kustomization" && d.kind !== "Secret").map((d) => d.file);
    expect([...m.get("Kustomization").resources].sort()).toEqual(applied.sort());
  });

  it("runs two non-root replicas, as the image's user, with a read-only root filesystem", () => {
    const m = k8s();
    const dep = m.get("Deployment");
    expect(dep.spec.replicas).toBeGreaterThanOrEqual(2);
    const pod = dep.spec.template.spec;
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    const imageUser = instr(runtimeStage(), "USER").at(-1)?.args.split(":")[0];
    expect(String(pod.securityContext.runAsUser)).toBe(imageUser);
    const sc = container(m).securityContext;
    expect(sc).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
    expect(sc.capabilities.drop).toEqual(["ALL"]);
    const labels = dep.spec.template.metadata.labels;
    for (const selector of [dep.spec.selector.matchLabels, m.get("PodDisruptionBudget").spec.selector.matchLabels]) {
      expect(labels).toMatchObject(selector);
    }
    expect(labels).toMatchObject(m.get("Service").spec.selector);
  });

  it("is ready on /readyz, alive on /healthz, and drains before it stops", () => {
    const m = k8s();
    const c = container(m);
    const portName = c.ports[0].name;
    expect(m.get("Service").spec.ports[0].targetPort).toBe(portName);
    expect(String(c.ports[0].containerPort)).toBe(m.get("ConfigMap").data.KEYWARD_PORT);
    expect(c.readinessProbe.httpGet).toEqual({ path: "/readyz", port: portName });
    expect(c.livenessProbe.httpGet).toEqual({ path: "/healthz", port: portName });
    // A short PostgreSQL outage must not empty the Service while cached keys still verify.
    const window = c.readinessProbe.periodSeconds * c.readinessProbe.failureThreshold * 1000;
    expect(window).toBeGreaterThanOrEqual(Number(m.get("ConfigMap").data.KEYWARD_MAX_STALENESS_MS));
    const preStop = c.lifecycle.preStop.exec.command as string[];
    expect(preStop[0]).toBe("sleep");
    const grace = m.get("Deployment").spec.template.spec.terminationGracePeriodSeconds;
    expect(grace).toBeGreaterThanOrEqual(Number(preStop[1]) + 10 + 5);
  });

  it("takes every secret from the Secret, never from a literal or the ConfigMap", () => {
    const m = k8s();
    const c = container(m);
    const secretName = m.get("Secret").metadata.name;
    for (const name of SECRET_ENV) {
      const entry = c.env.find((e: Doc) => e.name === name);
      expect(entry?.value).toBeUndefined();
      expect(entry?.valueFrom.secretKeyRef).toMatchObject({ name: secretName, key: name });
      expect(m.get("Secret").stringData).toHaveProperty(name);
      expect(m.get("ConfigMap").data).not.toHaveProperty(name);
    }
    expect(c.env.filter((e: Doc) => e.value !== undefined)).toEqual([]);
    expect(c.envFrom).toEqual([{ configMapRef: { name: m.get("ConfigMap").metadata.name } }]);
  });

  it("configures settings keyward serve accepts, and the example Secret's placeholders are refused", () => {
    const m = k8s();
    const secrets = {
      KEYWARD_DATABASE_URL: "postgres://keyward:pw@postgres:5432/keyward",
      KEYWARD_REDIS_URL: "redis://redis:6379",
      ...dotEnv(),
    };
    const cfg = loadConfig({ env: { ...m.get("ConfigMap").data, ...secrets } });
    expect(cfg.host).toBe("0.0.0.0");
    expect(cfg.issuer).toMatch(/^https:\/\//);
    // Applied by mistake, the example must stop the server rather than run with a published key.
    const example = m.get("Secret").stringData;
    expect(() => loadConfig({ env: { ...m.get("ConfigMap").data, ...example } })).toThrow(/KEYWARD_ADMIN_TOKEN/);
    expect(() =>
      loadMasterKey({ fromEnv: example.KEYWARD_MASTER_KEY, dataDir: "/nonexistent", requireExplicit: true, warn() {} }),
    ).toThrow(/KEYWARD_MASTER_KEY/);
  });
});

describe("environment names", () => {
  it("config.ts reads every name of SPEC §1", () => {
    const accepted = acceptedEnvNames();
    for (const name of SPEC_ENV) expect(accepted).toContain(name);
  });

  it("every KEYWARD_* name in the deployment files is one keyward reads", () => {
    const accepted = acceptedEnvNames();
    const files = [
      "Dockerfile",
      "docker-compose.yml",
      ...readdirSync(join(ROOT, K8S), { recursive: true, encoding: "utf8" })
        .filter((f) => f.endsWith(".yaml"))
        .map((f) => `${K8S}/${f}`),
    ];
    const used = new Set(files.flatMap((f) => [...read(f).matchAll(/\bKEYWARD_[A-Z0-9_]+/g)].map((m) => m[0])));
    // Compose-only variables that never reach keyward itself.
    used.delete("KEYWARD_PUBLIC_PORT");
    // The agent's (deploy/k8s/agent): where its SDK finds Keyward, read by the agent, not keyward.
    used.delete("KEYWARD_URL");
    expect(used.size).toBeGreaterThan(10);
    expect([...used].filter((n) => !accepted.has(n))).toEqual([]);
  });
});
