export { type ExchangedToken, ExchangeError, type ExchangeOptions, exchangeToken } from "./exchange.js";
export * from "./verify/index.js";
