export type { KeywardEvents } from "./emitter.js";
export { Keyward } from "./keyward.js";
export type { Clock, ConnectOptions } from "./options.js";
export type { AccessToken, TokenCredential } from "./token-credential.js";
