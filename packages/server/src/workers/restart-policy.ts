/**
 * When a worker that died unexpectedly is started again. Each unexpected exit within `windowMs` of
 * the previous ones doubles the delay (from `baseMs`, at most `maxMs`); `maxExits` of them within
 * `windowMs` is a crash loop: the primary stops instead of restarting forever (a bad setting, a
 * full disk, a store that refuses every worker) and says so in one line.
 */
export interface RestartPolicy {
  /** A worker exited unexpectedly at `now`: the delay before its replacement, or "crash loop". */
  onExit(now: number): { restartInMs: number } | { crashLoop: { exits: number; withinMs: number } };
}

export const DEFAULT_RESTART = { baseMs: 100, maxMs: 5000, maxExits: 5, windowMs: 30_000 } as const;

export function createRestartPolicy(settings: {
  baseMs: number;
  maxMs: number;
  maxExits: number;
  windowMs: number;
}): RestartPolicy {
  let exits: number[] = [];
  return {
    onExit(now) {
      exits = exits.filter((t) => now - t < settings.windowMs);
      exits.push(now);
      if (exits.length >= settings.maxExits) {
        return { crashLoop: { exits: exits.length, withinMs: settings.windowMs } };
      }
      return { restartInMs: Math.min(settings.maxMs, settings.baseMs * 2 ** (exits.length - 1)) };
    },
  };
}
