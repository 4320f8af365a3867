import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";

/** What became of one POST: the status, or why there is none. Never holds a header or body we sent. */
export type SendResult = { ok: true; status: number } | { ok: false; error: string };

const MAX_RESPONSE_BYTES = 4096;

/**
 * POSTs one delivery. Redirects are not followed (a 3xx is a failure: the receiver must answer
 * itself, and a redirect could send a signed body elsewhere); the response body is read to at most
 * 4 KiB and dropped; the whole exchange is bounded by `timeoutMs`; `signal` aborts it (shutdown).
 */
export function sendWebhook(
  url: string,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<SendResult> {
  return new Promise((resolve) => {
    const target = new URL(url);
    const send = target.protocol === "https:" ? httpsRequest : httpRequest;
    let done = false;
    const finish = (result: SendResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      resolve(result);
    };
    const req = send(target, {
      method: "POST",
      headers: { ...headers, "content-length": String(Buffer.byteLength(body)), "user-agent": "Keyward-Webhooks/1" },
      agent: false,
    });
    const timer = setTimeout(() => {
      finish({ ok: false, error: `no answer within ${timeoutMs} ms` });
      req.destroy();
    }, timeoutMs);
    const onAbort = () => {
      finish({ ok: false, error: "stopped (shutdown)" });
      req.destroy();
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    req.on("error", (err: NodeJS.ErrnoException) =>
      finish({ ok: false, error: `connection failed (${err.code ?? "error"})` }),
    );
    req.on("response", (res) => {
      const status = res.statusCode ?? 0;
      let read = 0;
      res.on("data", (chunk: Buffer) => {
        read += chunk.length;
        if (read > MAX_RESPONSE_BYTES) res.destroy();
      });
      const settle = () => {
        if (status >= 200 && status < 300) finish({ ok: true, status });
        else if (status >= 300 && status < 400)
          finish({ ok: false, error: `answered ${status} (redirects are not followed)` });
        else finish({ ok: false, error: `answered ${status}` });
      };
      res.on("end", settle);
      res.on("close", settle);
      res.on("error", settle);
    });
    req.end(body);
  });
}
