/**
 * The `keyward` package's programmatic entry: start a server from a script or a test the way
 * `keyward serve` does (`loadConfig` validates the same settings, `startKeyward` listens and
 * returns its URL and `close()`). Everything else in the package is internal; the CLI is `bin`.
 *
 * @example
 * ```ts
 * import { loadConfig, startKeyward } from "keyward";
 * const kw = await startKeyward(loadConfig({ env: process.env, flags: { port: "0" } }));
 * console.log(kw.url);
 * await kw.close();
 * ```
 */
export { type RunningKeyward, type StartOptions, startKeyward } from "./app.js";
export { type Config, ConfigError, type ConfigSources, loadConfig } from "./config.js";
