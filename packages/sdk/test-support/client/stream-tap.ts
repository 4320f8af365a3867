/**
 * A fetch for tests that reports what the client has processed, so a test waits for events
 * instead of sleeping:
 * - `chunks(n)`: resolves when n more chunks of the event stream were pulled. The tap's readable
 *   side has no buffer, so when chunk n+1 is pulled the client has finished with chunk n.
 * - `settled()`: resolves when every `/v1/credentials` answer so far has been read and handled
 *   (the handling is synchronous after the JSON is parsed; a macrotask later it is done).
 */
export function tappedFetch(): { fetch: typeof fetch; chunks(n: number): Promise<void>; settled(): Promise<void> } {
  let waiting: { left: number; resolve: () => void } | undefined;
  const inFlight = new Set<Promise<void>>();
  const fetchImpl: typeof fetch = async (input, init) => {
    if (!String(input).endsWith("/events")) {
      let done!: () => void;
      const handled = new Promise<void>((resolve) => (done = resolve));
      inFlight.add(handled);
      void handled.then(() => inFlight.delete(handled));
      const res = await fetch(input, init).catch((err: unknown) => {
        done();
        throw err;
      });
      if (res.body === null) {
        setImmediate(done);
        return res;
      }
      // Done once the client has read the whole body (it parses and applies it synchronously then).
      const seen = new TransformStream<Uint8Array, Uint8Array>({ flush: () => void setImmediate(done) });
      return new Response(res.body.pipeThrough(seen), { status: res.status, headers: res.headers });
    }
    const res = await fetch(input, init);
    if (res.body === null) return res;
    const tap = new TransformStream<Uint8Array, Uint8Array>(
      {
        transform(chunk, ctrl) {
          ctrl.enqueue(chunk);
          if (waiting !== undefined && --waiting.left === 0) {
            const { resolve } = waiting;
            waiting = undefined;
            resolve();
          }
        },
      },
      { highWaterMark: 1 },
      { highWaterMark: 0 },
    );
    return new Response(res.body.pipeThrough(tap), { status: res.status, headers: res.headers });
  };
  return {
    fetch: fetchImpl,
    chunks: (n) => new Promise((resolve) => (waiting = { left: n, resolve })),
    settled: async () => {
      while (inFlight.size > 0) await Promise.all(inFlight);
    },
  };
}
