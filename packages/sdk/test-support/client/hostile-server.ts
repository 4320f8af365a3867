import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/**
 * A server that answers with endless bodies, for the SDK's size limits. Each pour writes up to
 * `total` bytes in 64 KiB chunks, only as fast as the client takes them (it waits for `drain`), and
 * records how many bytes it handed to the socket before the client cut the connection. Tests only.
 */
export const CHUNK = 64 * 1024;
export const GiB = 1024 ** 3;

export interface Pour {
  /** Bytes handed to the socket (the client read at most this many). */
  sent: number;
  /** The client closed the connection before `total` bytes were sent. */
  cut: boolean;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void;

export class HostileServer {
  readonly pours: Promise<Pour>[] = [];
  #server: Server | undefined;
  #port = 0;
  readonly #sockets = new Set<Socket>();
  readonly #pourWaiters: ((p: Promise<Pour>) => void)[] = [];

  constructor(private readonly handler: Handler) {}

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  async start(): Promise<this> {
    const server = createServer((req, res) => this.handler(req, res, new URL(req.url ?? "/", "http://x")));
    server.on("connection", (s) => {
      this.#sockets.add(s);
      s.once("close", () => this.#sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    this.#server = server;
    this.#port = (server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    const server = this.#server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Resolves with the next pour's outcome once it ended (cut by the client, or all sent). */
  nextPour(): Promise<Pour> {
    return new Promise<Pour>((resolve) => this.#pourWaiters.push(resolve));
  }

  /** Writes `head`, then `piece` repeated (in chunks of about 64 KiB) up to `total` bytes. */
  pour(res: ServerResponse, head: string, piece: string, total = GiB): void {
    const chunk = Buffer.from(piece.repeat(Math.max(1, Math.floor(CHUNK / piece.length))));
    const outcome = new Promise<Pour>((resolve) => {
      let sent = 0;
      let ended = false;
      res.once("close", () => resolve({ sent, cut: !ended }));
      const write = () => {
        if (sent === 0 && head !== "") {
          sent += Buffer.byteLength(head);
          res.write(head);
        }
        while (sent < total && !res.destroyed) {
          sent += chunk.length;
          if (!res.write(chunk)) {
            res.once("drain", write);
            return;
          }
        }
        if (!res.destroyed) {
          ended = true;
          res.end();
        }
      };
      write();
    });
    this.pours.push(outcome);
    for (const w of this.#pourWaiters.splice(0)) w(outcome);
  }
}

/**
 * A fetch over `inner` that counts the body bytes the client pulled. Its stream holds at most one
 * chunk ahead of the reader (a writable side of 0 would stall the pipe), so the count is what the
 * SDK took in plus at most that chunk.
 */
export function countingFetch(inner: typeof fetch): { fetch: typeof fetch; pulled(): number } {
  let pulled = 0;
  const wrapped: typeof fetch = async (input, init) => {
    const res = await inner(input, init);
    if (res.body === null) return res;
    const count = new TransformStream<Uint8Array, Uint8Array>(
      {
        transform(chunk, ctrl) {
          pulled += chunk.byteLength;
          ctrl.enqueue(chunk);
        },
      },
      { highWaterMark: 1 },
      { highWaterMark: 0 },
    );
    return new Response(res.body.pipeThrough(count), { status: res.status, headers: res.headers });
  };
  return { fetch: wrapped, pulled: () => pulled };
}
