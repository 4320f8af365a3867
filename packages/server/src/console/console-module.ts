import { resolve } from "node:path";
import type { Router } from "../http/router.js";
import type { ConsoleConfig } from "./console-config.js";
import { DEFAULT_CONSOLE_DIR } from "./console-files.js";
import { registerConsoleRoutes } from "./console-routes.js";

/**
 * The web console's static build (packages/console), served at `/console` by the server itself:
 * no second process. The folder is read on each request, so a build made after start is served
 * without a restart, and a missing build answers a page saying how to make it.
 */
export function createConsoleModule(deps: { config: ConsoleConfig; configDir: string }) {
  const dir = deps.config.dir === undefined ? DEFAULT_CONSOLE_DIR : resolve(deps.configDir, deps.config.dir);
  return {
    dir,
    register(router: Router): void {
      registerConsoleRoutes(router, { dir });
    },
  };
}
