/**
 * `@keyward/sdk/jwks`: the JWKS cache behind the SDK's verifier, generic over the key type, for
 * verifying tokens of other issuers (Keyward's server uses it for trusted identity providers).
 * Not on the main entry: an agent verifying Keyward's tokens needs only `verifier()`.
 */
export { JwksUnavailableError } from "./errors.js";
export {
  createJwksCache,
  type JwkImporter,
  type JwksCache,
  type JwksCacheOptions,
  MAX_JWKS_BYTES,
  REFETCHABLE_KID,
} from "./jwks.js";
