// An agent with no static secret: it proves who it is with the service-account token Kubernetes
// projects into its pod (deploy/k8s/agent/agent-workload-identity.yaml), which Keyward's
// `trusted_workloads` map to agent `research`. No kwk_ key in its code, environment or files.
// The SDK exchanges the token for a short-lived access token and re-reads the file at each
// renewal, so the kubelet's rotation of the file needs nothing from the agent.
//
// Run: KEYWARD_URL=http://keyward:8080 KEYWARD_TOKEN_FILE=/var/run/secrets/keyward/token PORT=4300 node examples/k8s-agent/agent.mjs
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import http from "node:http";
import { Keyward } from "@keyward/sdk";

const TOKEN_FILE = process.env.KEYWARD_TOKEN_FILE ?? "/var/run/secrets/keyward/token";
const CREDENTIAL = process.env.KEYWARD_CREDENTIAL ?? "research_openai";

/** A short fingerprint, so logs can show that a value changed without showing the value. */
const fingerprint = (value) => createHash("sha256").update(value).digest("hex").slice(0, 8);

const kw = await Keyward.connect({
  url: process.env.KEYWARD_URL ?? "http://127.0.0.1:8080",
  workloadToken: () => readFile(TOKEN_FILE, "utf8"),
});
console.log(`connected with the workload token; ${CREDENTIAL} is sha256:${fingerprint(kw.get(CREDENTIAL))}`);
kw.on("change", ({ name, version }) => {
  if (name === CREDENTIAL) console.log(`${name} rotated to v${version}: sha256:${fingerprint(kw.get(name))}`);
});
kw.on("error", (err) => console.error(`keyward: ${err.code}: ${err.message} (serving the last good values)`));

// A readiness endpoint for the pod: ready while the value can be read (not stale).
const server = http.createServer((req, res) => {
  if (req.url !== "/readyz") return void res.writeHead(404).end();
  try {
    kw.get(CREDENTIAL);
    res.writeHead(200, { "content-type": "text/plain" }).end("ready\n");
  } catch (err) {
    res.writeHead(503, { "content-type": "text/plain" }).end(`${err.code}\n`);
  }
});
server.listen(Number(process.env.PORT ?? 4300), "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
const stop = () => {
  server.close();
  void kw.close().then(() => process.exit(0));
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
