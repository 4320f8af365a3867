import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../config.js";
import { WEBHOOK_EVENT_TYPES } from "./webhook-events.js";
import { webhookEndpoints } from "./webhooks-config.js";

const secret = `whsec_${randomBytes(32).toString("base64")}`;

function fromFile(text: string) {
  const dir = mkdtempSync(join(tmpdir(), "kw-wh-cfg-"));
  const file = join(dir, "keyward.yaml");
  writeFileSync(file, text);
  return () => loadConfig({ env: {}, configFile: file });
}

function errorOf(load: () => unknown): string {
  try {
    load();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error("the configuration was accepted");
}

describe("webhooks configuration", () => {
  it("takes endpoints from the file and the KEYWARD_ALERT_WEBHOOK shortcut (every type)", () => {
    const load = () =>
      loadConfig({
        env: { KEYWARD_ALERT_WEBHOOK: "https://ops.example/hook", KEYWARD_ALERT_WEBHOOK_SECRET: secret },
        configFile: writeYaml(
          `webhooks:\n  - url: http://127.0.0.1:9/a\n    secret: ${secret}\n    events: [key.revoked]\n`,
        ),
      });
    const endpoints = webhookEndpoints(load());
    expect(endpoints).toEqual([
      { url: "http://127.0.0.1:9/a", secret, events: ["key.revoked"] },
      { url: "https://ops.example/hook", secret, events: [...WEBHOOK_EVENT_TYPES] },
    ]);
  });

  it.each([
    [
      "a URL that is not http(s)",
      `webhooks:\n  - url: ftp://x/y\n    secret: ${secret}\n`,
      /webhooks in .*: url must be an http\(s\) URL/,
    ],
    [
      "a secret without whsec_",
      "webhooks:\n  - url: https://x.example/\n    secret: s3cr3t-value-1234\n",
      /secret must be whsec_/,
    ],
    ["a secret too short", "webhooks:\n  - url: https://x.example/\n    secret: whsec_QUJD\n", /secret must be whsec_/],
    [
      "an unknown event type",
      `webhooks:\n  - url: https://x.example/\n    secret: ${secret}\n    events: [key.explode]\n`,
      /events must list event types among alert.created/,
    ],
    [
      "an unknown field",
      `webhooks:\n  - url: https://x.example/\n    secret: ${secret}\n    retries: 3\n`,
      /webhooks in /,
    ],
  ])("refuses %s with one line naming the setting, never the secret", (_name, yaml, message) => {
    const text = errorOf(fromFile(yaml));
    expect(text).toMatch(message);
    expect(text).not.toContain("\n");
    expect(text).not.toContain(secret.slice(6, 20));
    expect(text).not.toContain("s3cr3t-value");
  });

  it("refuses the shortcut's URL without its secret and a malformed secret, naming the variable", () => {
    expect(errorOf(() => loadConfig({ env: { KEYWARD_ALERT_WEBHOOK: "https://ops.example/hook" } }))).toMatch(
      /alert_webhook_secret: KEYWARD_ALERT_WEBHOOK and KEYWARD_ALERT_WEBHOOK_SECRET go together/,
    );
    const text = errorOf(() =>
      loadConfig({
        env: {
          KEYWARD_ALERT_WEBHOOK: "https://ops.example/hook",
          KEYWARD_ALERT_WEBHOOK_SECRET: "whsec_notbase64!!secretvalue",
        },
      }),
    );
    expect(text).toMatch(/^invalid configuration: KEYWARD_ALERT_WEBHOOK_SECRET: must be whsec_/);
    expect(text).not.toContain("secretvalue");
    expect(
      errorOf(() =>
        loadConfig({ env: { KEYWARD_ALERT_WEBHOOK: "ftp://ops.example/hook", KEYWARD_ALERT_WEBHOOK_SECRET: secret } }),
      ),
    ).toMatch(/KEYWARD_ALERT_WEBHOOK: url must be an http\(s\) URL/);
  });
});

describe("leaks configuration", () => {
  it("takes P-256 public keys and an action, and refuses other keys naming the field", () => {
    const { publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const pem = publicKey.export({ type: "spki", format: "pem" }).toString();
    const indented = pem.trim().split("\n").join("\n        ");
    const cfg = fromFile(
      `leaks:\n  action: freeze\n  public_keys:\n    - id: k1\n      pem: |\n        ${indented}\n`,
    )();
    expect(cfg.leaks?.action).toBe("freeze");
    expect(cfg.leaks?.public_keys[0]?.id).toBe("k1");
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 })
      .publicKey.export({ type: "spki", format: "pem" })
      .toString();
    const rsaIndented = rsa.trim().split("\n").join("\n        ");
    expect(errorOf(fromFile(`leaks:\n  public_keys:\n    - id: k1\n      pem: |\n        ${rsaIndented}\n`))).toMatch(
      /leaks in .*: pem must be an ECDSA P-256 public key/,
    );
    expect(errorOf(fromFile("leaks:\n  action: delete\n"))).toMatch(/leaks in /);
  });
});

function writeYaml(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), "kw-wh-cfg-"));
  const file = join(dir, "keyward.yaml");
  writeFileSync(file, text);
  return file;
}
