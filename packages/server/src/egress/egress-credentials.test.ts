import { describe, expect, it } from "vitest";
import { frozenClock } from "../clock.js";
import type { CredentialRow, VersionRow } from "../credentials/credentials-store.js";
import { silentLogger } from "../ops/logger.js";
import { createEgressCredentials, type EgressCredentialSource } from "./egress-credentials.js";

const EGRESS = JSON.stringify({
  base_url: "https://api.example.com/v1",
  header: "Authorization",
  format: "Bearer {value}",
});

function row(name: string, over: Partial<CredentialRow> = {}): CredentialRow {
  return {
    name,
    type: "static",
    current_version: 1,
    latest_version: 1,
    egress: EGRESS,
    provider: null,
    provider_secret: null,
    config_seq: 1,
    status: "ok",
    status_message: null,
    status_at: null,
    refresh_lease_until: null,
    change_seq: 1,
    created_at: 0,
    updated_at: 0,
    deleted_at: null,
    pointer_mac: null,
    ...over,
  };
}

/** A store with counters, so "no store read, no decryption on a hit" can be asserted. */
function fakeSource() {
  const rows = new Map<string, CredentialRow>();
  const values = new Map<string, { value: string; expires_at: number | null }>();
  const modes = new Map<string, "read" | "inject">();
  const calls = { get: 0, open: 0 };
  const tampered = new Set<string>();
  let gate: Promise<void> | undefined;
  const source: EgressCredentialSource = {
    mode: async (agent, name) => modes.get(`${agent}/${name}`) ?? null,
    pointerIntact: async (r) => !tampered.has(r.name),
    async get(name) {
      calls.get++;
      // Read first, answer later: a held load returns what the row was when it was read.
      const found = rows.get(name);
      await gate;
      return found;
    },
    async getVersion(name, version): Promise<VersionRow | undefined> {
      const v = values.get(`${name}@${version}`);
      return (
        v && {
          name,
          version,
          value_enc: Buffer.from("sealed"),
          source: "set",
          rolled_back_from: null,
          expires_at: v.expires_at,
          created_at: 0,
          created_by: "admin:x",
        }
      );
    },
    open(v) {
      calls.open++;
      const found = values.get(`${v.name}@${v.version}`);
      if (!found) throw new Error("cannot decrypt");
      return found.value;
    },
  };
  return {
    source,
    calls,
    set(
      name: string,
      version: number,
      value: string,
      over: Partial<CredentialRow> = {},
      expiresAt: number | null = null,
    ) {
      rows.set(name, row(name, { current_version: version, latest_version: version, ...over }));
      values.set(`${name}@${version}`, { value, expires_at: expiresAt });
    },
    tamper(name: string) {
      tampered.add(name);
    },
    grant(agent: string, name: string, mode: "read" | "inject") {
      modes.set(`${agent}/${name}`, mode);
    },
    hold(): () => void {
      let release!: () => void;
      gate = new Promise((r) => {
        release = r;
      });
      return () => {
        gate = undefined;
        release();
      };
    },
  };
}

function setup() {
  const fake = fakeSource();
  const clock = frozenClock();
  const creds = createEgressCredentials({ source: fake.source, clock, logger: silentLogger() });
  return { fake, clock, creds };
}

describe("egress credentials", () => {
  it("loads and decrypts once, then answers from memory", async () => {
    const { fake, creds } = setup();
    fake.set("api", 1, "sk-one-0123456789");
    fake.grant("bot", "api", "inject");
    const c = await creds.resolve("bot", "api");
    expect(c).toMatchObject({
      name: "api",
      version: 1,
      host: "api.example.com",
      inject: { name: "authorization", value: "Bearer sk-one-0123456789" },
      base: { origin: "https://api.example.com", prefix: "/v1" },
    });
    for (let i = 0; i < 10; i++) await creds.resolve("bot", "api");
    expect(fake.calls).toEqual({ get: 1, open: 1 });
  });

  it("refuses a row whose pointer fails its integrity check, without decrypting anything", async () => {
    const { fake, creds } = setup();
    fake.set("api", 1, "sk-one-0123456789");
    fake.grant("bot", "api", "inject");
    fake.tamper("api");
    const err = await creds.resolve("bot", "api").catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "credential_unavailable" });
    expect(String((err as Error).message)).not.toContain("sk-one");
    expect(fake.calls.open).toBe(0);
  });

  it("loads once for concurrent first uses", async () => {
    const { fake, creds } = setup();
    fake.set("api", 1, "sk-one-0123456789");
    fake.grant("bot", "api", "read");
    await Promise.all(Array.from({ length: 20 }, () => creds.resolve("bot", "api")));
    expect(fake.calls.get).toBe(1);
  });

  it("takes the new version after a change, and never caches a load that a change overtook", async () => {
    const { fake, creds } = setup();
    fake.set("api", 1, "sk-one-0123456789");
    fake.grant("bot", "api", "inject");
    const release = fake.hold();
    const stale = creds.resolve("bot", "api");
    while (fake.calls.get === 0) await Promise.resolve();
    fake.set("api", 2, "sk-two-0123456789");
    creds.credentialChanged("api");
    release();
    await stale;
    expect((await creds.resolve("bot", "api")).version).toBe(2);
  });

  it("refuses unknown, malformed and ungranted names alike, without a store read", async () => {
    const { fake, creds } = setup();
    fake.set("api", 1, "sk-one-0123456789");
    for (const name of ["api", "nope", "../x", "__proto__", "a/b"]) {
      await expect(creds.resolve("bot", name)).rejects.toMatchObject({ code: "credential_not_granted" });
    }
    expect(fake.calls.get).toBe(0);
  });

  it("says so when the credential has no egress, no value, or cannot be decrypted", async () => {
    const { fake, creds } = setup();
    fake.set("plain", 1, "v-0123456789", { egress: null });
    fake.set("pending", 1, "v-0123456789", { current_version: null });
    fake.set("broken", 1, "v-0123456789");
    fake.source.open = () => {
      throw new Error("cannot decrypt");
    };
    for (const n of ["plain", "pending", "broken"]) fake.grant("bot", n, "inject");
    await expect(creds.resolve("bot", "plain")).rejects.toMatchObject({ code: "egress_not_configured" });
    await expect(creds.resolve("bot", "pending")).rejects.toMatchObject({ code: "credential_unavailable" });
    await expect(creds.resolve("bot", "broken")).rejects.toMatchObject({ code: "credential_unavailable" });
  });

  it("refuses a value that cannot travel in a header, without echoing it", async () => {
    const { fake, creds } = setup();
    fake.set("crlf", 1, "v\r\nX-Evil: 1");
    fake.grant("bot", "crlf", "inject");
    const err = await creds.resolve("bot", "crlf").catch((e: Error) => e);
    expect(err).toMatchObject({ code: "credential_unavailable" });
    expect((err as Error).message).not.toContain("X-Evil");
  });

  it("stops injecting a token at its expiry, and takes the refreshed one", async () => {
    const { fake, clock, creds } = setup();
    fake.set("tok", 1, "token-one-0123456789", {}, clock.now() + 60_000);
    fake.grant("bot", "tok", "inject");
    expect((await creds.resolve("bot", "tok")).version).toBe(1);
    clock.advance(60_000);
    await expect(creds.resolve("bot", "tok")).rejects.toMatchObject({ code: "credential_unavailable" });
    fake.set("tok", 2, "token-two-0123456789", {}, clock.now() + 60_000);
    expect((await creds.resolve("bot", "tok")).version).toBe(2);
  });

  it("fills a custom header and format", async () => {
    const { fake, creds } = setup();
    fake.set("k", 1, "abc-0123456789", {
      egress: JSON.stringify({ base_url: "http://127.0.0.1:9", header: "X-Api-Key", format: "{value}" }),
    });
    fake.grant("bot", "k", "read");
    expect((await creds.resolve("bot", "k")).inject).toEqual({ name: "x-api-key", value: "abc-0123456789" });
  });
});
