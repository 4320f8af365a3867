import http from "node:http";
import https from "node:https";
import { Readable } from "node:stream";
import type { FetchLike } from "./options.js";

/*
 * The client's default transport: just enough of `fetch` (the GETs and POSTs of SPEC §6) on
 * node:http.
 * Measured here, a GET through undici's fetch costs about three times the CPU of the same GET
 * through node:http; one agent process does not care, but a host running many agents (or the
 * rotation benchmark: 1,000 clients answering one rotation at once) does. Bodies of JSON answers
 * are read whole (they are small); an event stream is handed over as a web stream.
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
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.once("end", () => resolve(new Response(Buffer.concat(chunks), { status, headers })));
      res.once("error", reject);
    });
    req.once("error", reject);
    req.end(body);
  });
