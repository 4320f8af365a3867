import type { Logger } from "../ops/logger.js";

/**
 * SIGTERM or SIGINT drains a running server once (SPEC §1: in-flight requests finish, audit and
 * usage are flushed) and exits 0, or 1 if closing failed. The one shutdown of a single server and
 * of each worker. flush(): the log's destination is asynchronous, and these are the last lines.
 */
export function drainOnSignal(running: { close(): Promise<void> }, logger: Logger): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "signal received");
    running.close().then(
      () => logger.flush(() => process.exit(0)),
      (err) => {
        logger.error({ err: (err as Error).message }, "shutdown error");
        logger.flush(() => process.exit(1));
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}
