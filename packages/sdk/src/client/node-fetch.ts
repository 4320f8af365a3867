import http from "node:http";
import https from "node:https";
import { Readable } from "node:stream";
import type { FetchLike } from "./options.js";

/*
 * The client's default transport: just enough of `fetch` (the GETs and POSTs of SPEC §6) on
 * node:http.
 * Measured here, a GET through undici's fetch costs about three times the CPU of the same GET
 * through node:http; one agent process does not care, but a host running many agents (or the
 * rotation benchmark: 1,000 clients answering one rotation at once) does. Every body is handed
 * over as a web stream and never buffered here: the reader decides how much it accepts
 * (http/bounded-body.ts), and cancelling the stream destroys the socket, so a server sending
 * gigabytes is cut off at the reader's limit. JSON bodies use the small stream below rather than
 * `Readable.toWeb`, which costs more per chunk; an event stream is long-lived and uses toWeb.
 *
 * The keep-alive agents are shared by every client of the process, like fetch's global pool;
 * Node unrefs idle sockets, so they never keep a process alive, and the server closes them when
 * they stay idle past its keep-alive timeout.
 */
// Room for one idle connection per client of a process that runs many (Node's default keeps 256):
// a connection closed after each rotation would have to be opened again for the next one.
const agentOptions = { keepAlive: true, maxFreeSockets: 4096 };
const agents = {
  "http:": new http.Agent(agentOptions),
  "https:": new https.Agent(agentOptions),
};

const NULL_BODY = new Set([101, 204, 205, 304]);

function toHeaders(raw: http.IncomingHttpHeaders): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(raw)) {
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(", ") : value);
  }
  return headers;
}

/**
 * A response body as a web stream holding at most one chunk ahead of its reader: the socket is
 * paused until the reader asks for more, so nothing piles up in memory however fast the server
 * sends. Cancelling destroys the response and its socket (never reused after a refused body).
 */
function bodyStream(res: http.IncomingMessage): ReadableStream<Uint8Array> {
  // Once cancelled, closed or errored the controller throws on any call: events still queued on
  // the response (an `end` right behind a cancel) must not reach it.
  let open = true;
  return new ReadableStream<Uint8Array>(
    {
      start(ctrl) {
        res.pause();
        res.on("data", (chunk: Buffer) => {
          if (!open) return;
          ctrl.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
          if ((ctrl.desiredSize ?? 0) <= 0) res.pause();
        });
        res.once("end", () => {
          if (open) ctrl.close();
          open = false;
        });
        res.once("error", (err) => {
          if (open) ctrl.error(err);
          open = false;
        });
      },
      pull() {
        res.resume();
      },
      cancel() {
        open = false;
        res.destroy();
      },
    },
    { highWaterMark: 1 },
  );
}

export const nodeFetch: FetchLike = (input, init) =>
  new Promise<Response>((resolve, reject) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      reject(new TypeError(`unsupported protocol ${url.protocol}`));
      return;
    }
    // Bodies as the tool calls send them (SPEC §6 POSTs): JSON text, or bytes.
    const body = init?.body ?? undefined;
    if (body !== undefined && typeof body !== "string" && !(body instanceof Uint8Array)) {
      reject(new TypeError("this transport sends string or byte bodies only"));
      return;
    }
    const transport = url.protocol === "https:" ? https : http;
    const options: http.RequestOptions = {
      method: init?.method ?? "GET",
      headers: init?.headers as Record<string, string> | undefined,
      agent: agents[url.protocol],
    };
    if (init?.signal) options.signal = init.signal;
    const req = transport.request(url, options, (res) => {
      const status = res.statusCode ?? 0;
      const headers = toHeaders(res.headers);
      if (NULL_BODY.has(status)) {
        res.resume();
        resolve(new Response(null, { status, headers }));
        return;
      }
      if ((res.headers["content-type"] ?? "").startsWith("text/event-stream")) {
        resolve(new Response(Readable.toWeb(res) as ReadableStream<Uint8Array>, { status, headers }));
        return;
      }
      resolve(new Response(bodyStream(res), { status, headers }));
    });
    req.once("error", reject);
    req.end(body);
  });
