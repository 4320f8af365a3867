import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { type Progress, ProgressNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

export interface ProgressRoute {
  /** The token to send upstream as `params._meta.progressToken`. */
  token: string;
  /** The call is over: later updates with this token go nowhere. */
  close(): void;
}

/**
 * Progress from one upstream, routed by the tokens we gave it. We do this instead of the SDK's
 * `onprogress` request option: the SDK handles a notification a microtask later but a response at
 * once, so when the last updates and the result arrive in one read (a stdio chunk), the result
 * wins and the updates are dropped. Here a notification is routed as it is read, in order; one
 * whose token we did not give (or gave for a call that is over) is dropped.
 */
export function createProgressRouter() {
  const routes = new Map<string, (p: Progress) => void>();
  let next = 0;
  return {
    /** Call after `client.connect(transport)`: wraps the handler the SDK installed. */
    intercept(transport: Transport): void {
      const inner = transport.onmessage;
      transport.onmessage = (message, extra) => {
        if ((message as { method?: unknown }).method !== "notifications/progress") return inner?.(message, extra);
        if (routes.size === 0) return;
        const parsed = ProgressNotificationSchema.safeParse(message);
        if (!parsed.success) return;
        const { progressToken, progress, total, message: text } = parsed.data.params;
        if (typeof progressToken !== "string") return;
        routes.get(progressToken)?.({
          progress,
          ...(total !== undefined ? { total } : {}),
          ...(text !== undefined ? { message: text } : {}),
        });
      };
    },

    open(onProgress: (p: Progress) => void): ProgressRoute {
      const token = `kw-${++next}`;
      routes.set(token, onProgress);
      return { token, close: () => routes.delete(token) };
    },
  };
}

export type ProgressRouter = ReturnType<typeof createProgressRouter>;
