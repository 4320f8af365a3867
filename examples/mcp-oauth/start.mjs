// Starts the whole example: the users' identity provider (local-idp.mjs), the fake cloud of
// examples/mcp-tools, and `keyward serve --config keyward.yaml` as a child process, with alice's
// cloud access key set. No key is made for anyone: MCP clients sign their users in.
//   node examples/mcp-oauth/start.mjs     (prints the MCP endpoint; Ctrl-C stops)
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { startFakeCloud } from "../mcp-tools/fake-cloud.mjs";
import { newAccessKey, serve } from "../mcp-tools/start.mjs";
import { adminClient } from "../shared/example-setup.mjs";
import { startLocalIdp } from "./local-idp.mjs";

const HERE = fileURLToPath(new URL(".", import.meta.url));

/**
 * Resolves with `{keywardUrl, mcpUrl, idp, accessKey, logs, close}` once everything listens and
 * alice's `aliyun_ak` is set. Her functions are `alice-etl` and `alice-report`.
 */
export async function startExample({ logLevel = "warn" } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "keyward-mcp-oauth-"));
  const accessKey = newAccessKey();
  let idp;
  let cloud;
  let keyward;
  const close = async () => {
    await keyward?.stop();
    await cloud?.close();
    await idp?.close();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    idp = await startLocalIdp({ clientId: "keyward" });
    cloud = await startFakeCloud({
      accounts: { [accessKey]: { account: "alice", functions: ["alice-etl", "alice-report"] } },
    });
    const adminToken = `mcp-oauth-example-admin-${randomBytes(24).toString("hex")}`;
    keyward = await serve(writeRunConfig(dir, idp.url, cloud.url), join(dir, "data"), 1, {
      KEYWARD_ADMIN_TOKEN: adminToken,
      KEYWARD_MASTER_KEY: randomBytes(32).toString("base64"),
      KEYWARD_LOG_LEVEL: logLevel,
    });
    const admin = adminClient(keyward.url, adminToken);
    await admin("PUT", "/users/alice/credentials/aliyun_ak", { value: accessKey });
    return { keywardUrl: keyward.url, mcpUrl: `${keyward.url}/mcp/cloud`, idp, accessKey, logs: keyward.logs, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** keyward.yaml with the IdP's and the fake cloud's addresses (known only now) and absolute `args`. */
function writeRunConfig(dir, idpUrl, cloudUrl) {
  const config = parseYaml(readFileSync(join(HERE, "keyward.yaml"), "utf8"));
  const cloud = config.mcp.servers.cloud;
  cloud.env = { ...cloud.env, FAKE_CLOUD_URL: cloudUrl };
  cloud.args = cloud.args.map((a) => resolve(HERE, a));
  config.trusted_issuers[0] = { ...config.trusted_issuers[0], issuer: idpUrl, jwks_uri: `${idpUrl}/jwks` };
  config.mcp_authorization.sign_in.issuer = idpUrl;
  const file = join(dir, "keyward.yaml");
  writeFileSync(file, stringifyYaml(config));
  return file;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const example = await startExample();
  console.log(`identity provider: ${example.idp.url}`);
  console.log(`MCP endpoint:      ${example.mcpUrl}   (sign in as alice)`);
  const stop = () => example.close().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
