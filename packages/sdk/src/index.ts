export {
  type AccessToken,
  type Clock,
  type ConnectOptions,
  Keyward,
  type KeywardEvents,
  type TokenCredential,
} from "./client/index.js";
export { KeywardError, type SdkErrorCode, StaleCredentialError, UnknownCredentialError } from "./errors.js";
export { type ExchangedToken, ExchangeError, type ExchangeOptions, exchangeToken } from "./exchange.js";
export * from "./tools/index.js";
export * from "./verify/index.js";
