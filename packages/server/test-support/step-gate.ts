/**
 * Lets a test release a server's steps one at a time (e.g. SSE events), so "arrives chunk by
 * chunk" is observable without timing: the server awaits `step()`, the test calls `next()`.
 */
export function createStepGate() {
  let releaseNext: (() => void) | undefined;
  const waiting: Array<() => void> = [];
  return {
    /** Server side: waits until the test releases this step. */
    step(): Promise<void> {
      return new Promise<void>((resolve) => {
        releaseNext = resolve;
        for (const w of waiting.splice(0)) w();
      });
    },
    /** Test side: releases the next step (waits until the server is ready for it). */
    async next(): Promise<void> {
      while (!releaseNext) await new Promise<void>((r) => waiting.push(r));
      const r = releaseNext;
      releaseNext = undefined;
      r();
    },
  };
}
