import { type CredentialsServiceDeps, createCredentialCore } from "./credential-core.js";
import { credentialReads } from "./credential-reads.js";
import { credentialVersions } from "./credential-versions.js";
import { credentialWrites } from "./credential-writes.js";

export {
  type CredentialInput,
  type CredentialMeta,
  type CredentialsServiceDeps,
  PROVIDER_ACTOR,
  PROVIDER_TYPE,
  type ProviderConfig,
} from "./credential-core.js";

/**
 * Credentials: sealed, versioned values, written only by admins (and token providers). The parts
 * share one core (credential-core.ts: how a row is saved, checked, sealed and written under audit):
 * admins' writes (credential-writes.ts), versions that are not an admin's value
 * (credential-versions.ts) and reads (credential-reads.ts).
 */
export function createCredentialsService(deps: CredentialsServiceDeps) {
  const core = createCredentialCore(deps);
  return { ...credentialWrites(core, deps), ...credentialVersions(core, deps), ...credentialReads(core, deps) };
}

export type CredentialsService = ReturnType<typeof createCredentialsService>;
