import http, { type IncomingHttpHeaders } from "node:http";

export interface SseEvent {
  event: string;
  data: string;
  /** The id field of this event, if it had one. */
  id: string | undefined;
}

export interface SseClient {
  status: number;
  headers: IncomingHttpHeaders;
  /** The next event (comments skipped); rejects if the stream ends first. */
  next(): Promise<SseEvent>;
  /** The next comment line (heartbeats), without the colon. */
  nextComment(): Promise<string>;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  /** Everything received so far, raw. */
  raw(): string;
  close(): void;
}

/**
 * A minimal EventSource on node:http with its own connection (no pool), so a test can hold many
 * streams, read them event by event, and close each for sure.
 */
export function openSse(url: string, headers: Record<string, string>): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { accept: "text/event-stream", ...headers }, agent: false }, (res) => {
      res.setEncoding("utf8");
      let buffer = "";
      let all = "";
      const events: SseEvent[] = [];
      const comments: string[] = [];
      const waiters: Array<() => void> = [];
      let done = false;
      let endResolve!: () => void;
      const ended = new Promise<void>((r) => {
        endResolve = r;
      });
      const wake = () => {
        for (const w of waiters.splice(0)) w();
      };
      res.on("data", (chunk: string) => {
        all += chunk;
        buffer += chunk;
        let at = buffer.indexOf("\n\n");
        while (at !== -1) {
          const block = buffer.slice(0, at);
          buffer = buffer.slice(at + 2);
          const fields: Record<string, string> = {};
          let isEvent = false;
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) comments.push(line.slice(1).trim());
            else {
              const i = line.indexOf(":");
              const name = i === -1 ? line : line.slice(0, i);
              const value = i === -1 ? "" : line.slice(i + 1).replace(/^ /, "");
              fields[name] = name === "data" && fields.data !== undefined ? `${fields.data}\n${value}` : value;
              isEvent = true;
            }
          }
          if (isEvent) events.push({ event: fields.event ?? "message", data: fields.data ?? "", id: fields.id });
          at = buffer.indexOf("\n\n");
        }
        wake();
      });
      const finish = () => {
        done = true;
        endResolve();
        wake();
      };
      res.on("end", finish);
      res.on("close", finish);
      res.on("error", finish);
      const take = <T>(list: T[], what: string): Promise<T> =>
        new Promise((ok, fail) => {
          const attempt = () => {
            const item = list.shift();
            if (item !== undefined) ok(item);
            else if (done) fail(new Error(`stream ended before the next ${what}`));
            else waiters.push(attempt);
          };
          attempt();
        });
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        next: () => take(events, "event"),
        nextComment: () => take(comments, "comment"),
        ended,
        raw: () => all,
        close: () => {
          req.destroy();
          res.destroy();
        },
      });
    });
    req.on("error", reject);
  });
}
