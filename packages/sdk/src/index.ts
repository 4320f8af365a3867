export {
  type AccessToken,
  type Clock,
  type ConnectOptions,
  Keyward,
  type KeywardEvents,
  type TokenCredential,
} from "./client/index.js";
export {
  KeywardError,
  ResponseTooLargeError,
  type SdkErrorCode,
  StaleCredentialError,
  UnknownCredentialError,
} from "./errors.js";
export { type ExchangedToken, ExchangeError, type ExchangeOptions, exchangeToken } from "./exchange.js";
export type { ResponseLimits } from "./http/limits.js";
export * from "./tools/index.js";
export * from "./verify/index.js";
