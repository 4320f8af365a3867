import {
  type CredentialCore,
  type CredentialMeta,
  type CredentialsServiceDeps,
  openSealed,
} from "./credential-core.js";
import {
  type CredentialRow,
  clientSecretAad,
  type VersionMeta,
  type VersionRow,
  valueAad,
} from "./credentials-store.js";

const MAX_VERSIONS_SHOWN = 1000;

/** Reads: metadata for admins, and the opened values and secrets the serving paths use. */
export function credentialReads(core: CredentialCore, deps: CredentialsServiceDeps) {
  const { store, keyring } = deps;
  const { intact, meta, live } = core;

  return {
    async get(name: string): Promise<{ credential: CredentialMeta; versions: VersionMeta[] }> {
      const row = await live(name);
      const versions = await store.listVersions(name, MAX_VERSIONS_SHOWN);
      const expiresAt = versions.find((v) => v.version === row.current_version)?.expires_at ?? null;
      return { credential: meta(row, expiresAt), versions };
    },

    async list(after: string | undefined, limit: number): Promise<CredentialMeta[]> {
      return (await store.list(after, limit)).map((row) => meta(row, null));
    },

    /**
     * Serves nothing from a row Keyward did not write: the egress and token-provider paths ask
     * this before using a row's pointer, egress or provider config (false: refuse, already alarmed).
     */
    pointerIntact: (row: CredentialRow) => intact(row),

    /** The client secret of a provider, opened for one token request (the caller zeroes it). */
    clientSecret(row: CredentialRow): Buffer {
      if (!row.provider_secret) throw new Error(`credential ${row.name} has no client secret`);
      return openSealed(keyring, row.provider_secret, clientSecretAad(row.name, row.config_seq));
    },

    /** Opens a version's value. DecryptError names the record, never the data. */
    openVersion(v: Pick<VersionRow, "name" | "version" | "value_enc">): string {
      const plain = openSealed(keyring, v.value_enc, valueAad(v.name, v.version));
      try {
        return plain.toString("utf8");
      } finally {
        plain.fill(0);
      }
    },
  };
}
