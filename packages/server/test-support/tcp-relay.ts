import net from "node:net";

interface Pair {
  client: net.Socket;
  upstream: net.Socket | undefined;
  /** One side went away while the relay was paused: the other learns it on resume. */
  closedWhilePaused: boolean;
}

/**
 * A TCP relay in front of a real service (PostgreSQL, Redis) that a test can cut and restore, to
 * see what Keyward does when its store goes away mid-flight, or pause and resume, to see what it
 * does when the store goes silent.
 *
 * - `cut()`: the service is stopped. Open connections are closed and new ones refused: errors
 *   arrive at once.
 * - `pause()`: the network stalls. Nothing is forwarded either way, nothing is closed, no error is
 *   sent: new connections are accepted but never reach the service, bytes wait, and a side that
 *   closes meanwhile is not heard of by the other until `resume()` (as in a partition that heals).
 *   The service's own timers (statement, idle-in-transaction) still run on its side.
 */
export async function startRelay(target: { host: string; port: number }) {
  const pairs = new Set<Pair>();
  let server: net.Server | undefined;
  let port = 0;
  let paused = false;

  function drop(pair: Pair): void {
    pair.client.destroy();
    pair.upstream?.destroy();
    pairs.delete(pair);
  }

  function onGone(pair: Pair): void {
    if (paused) pair.closedWhilePaused = true;
    else drop(pair);
  }

  function link(pair: Pair): void {
    const upstream = pair.upstream ?? net.connect(target);
    if (!pair.upstream) {
      pair.upstream = upstream;
      upstream.on("error", () => onGone(pair)).on("close", () => onGone(pair));
    }
    pair.client.pipe(upstream);
    upstream.pipe(pair.client);
    pair.client.resume();
    upstream.resume();
  }

  function unlink(pair: Pair): void {
    pair.client.unpipe();
    pair.upstream?.unpipe();
    pair.client.pause();
    pair.upstream?.pause();
  }

  async function listen(): Promise<void> {
    server = net.createServer((client) => {
      const pair: Pair = { client, upstream: undefined, closedWhilePaused: false };
      pairs.add(pair);
      client.on("error", () => onGone(pair)).on("close", () => onGone(pair));
      if (paused) client.pause();
      else link(pair);
    });
    await new Promise<void>((resolve) => server?.listen(port, "127.0.0.1", resolve));
    port = (server.address() as net.AddressInfo).port;
  }

  await listen();
  return {
    get port() {
      return port;
    },
    /** Refuses new connections and kills open ones: the service is "down". */
    async cut(): Promise<void> {
      paused = false;
      for (const p of pairs) drop(p);
      pairs.clear();
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      server = undefined;
    },
    /** Accepts again, on the same port. */
    restore: listen,
    /** Stops forwarding, silently: no data, no close, no error either way. */
    pause(): void {
      paused = true;
      for (const p of pairs) unlink(p);
    },
    /** Forwards again what waited, and the closes that happened meanwhile. */
    resume(): void {
      paused = false;
      for (const p of [...pairs]) {
        if (p.closedWhilePaused) drop(p);
        else link(p);
      }
    },
    /** Connections open through the relay now. */
    get connections(): number {
      return pairs.size;
    },
    close(): Promise<void> {
      return this.cut();
    },
  };
}

export type Relay = Awaited<ReturnType<typeof startRelay>>;
