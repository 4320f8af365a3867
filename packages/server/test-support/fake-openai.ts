import http from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeOpenAIRequest {
  method: string;
  /** The path without the query. */
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  // biome-ignore lint/suspicious/noExplicitAny: the JSON body as the client sent it
  body: any;
}

const json = (res: http.ServerResponse, status: number, body: unknown) => {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) }).end(text);
};

const openaiError = (message: string, type: string, code: string | null) => ({
  error: { message, type, param: null, code },
});

/** The key a request carries: OpenAI's `Authorization: Bearer …` or Azure's `api-key`. */
function keyOf(headers: http.IncomingHttpHeaders): string | undefined {
  const auth = headers.authorization;
  if (auth?.startsWith("Bearer ")) return auth.slice("Bearer ".length);
  const apiKey = headers["api-key"];
  return typeof apiKey === "string" ? apiKey : undefined;
}

function lastUserMessage(body: { messages?: Array<{ role?: string; content?: unknown }> }): string {
  const user = (body.messages ?? []).filter((m) => m.role === "user").at(-1);
  return typeof user?.content === "string" ? user.content : "";
}

/**
 * A local stand-in for the OpenAI API (`POST /v1/chat/completions`, `POST /v1/embeddings`) and
 * Azure OpenAI (`POST /openai/deployments/{deployment}/chat/completions?api-version=…`), answering
 * in the real response shapes so the real `openai` client parses them. The assistant echoes the
 * last user message. Every request is recorded, headers included.
 *
 * With `keys`, a request with any other key gets OpenAI's 401 `invalid_api_key`, quoting the key
 * it got in full (the real API masks the middle; quoting all of it is the worst case for a proxy
 * that must keep it from the agent).
 */
export async function startFakeOpenAI(opts: { keys?: string[] } = {}) {
  const requests: FakeOpenAIRequest[] = [];
  let accepted = opts.keys;
  let served = 0;

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://fake-openai");
      const text = Buffer.concat(chunks).toString("utf8");
      let body: unknown;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        json(res, 400, openaiError("We could not parse the JSON body of your request.", "invalid_request_error", null));
        return;
      }
      requests.push({
        method: req.method ?? "",
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body,
      });

      const key = keyOf(req.headers);
      if (accepted && (key === undefined || !accepted.includes(key))) {
        json(
          res,
          401,
          openaiError(`Incorrect API key provided: ${key ?? "(none)"}.`, "invalid_request_error", "invalid_api_key"),
        );
        return;
      }
      const azure = /^\/openai\/deployments\/([^/]+)\/chat\/completions$/.exec(url.pathname);
      if (req.method === "POST" && (url.pathname === "/v1/chat/completions" || azure)) {
        if (azure && !url.searchParams.get("api-version")) {
          json(res, 404, { error: { code: "404", message: "Resource not found" } });
          return;
        }
        // biome-ignore lint/suspicious/noExplicitAny: request JSON
        const b = (body ?? {}) as any;
        const content = `echo: ${lastUserMessage(b)}`;
        served++;
        json(res, 200, {
          id: `chatcmpl-fake-${served}`,
          object: "chat.completion",
          created: Math.floor(Date.now() / 1000),
          model: azure ? decodeURIComponent(azure[1] as string) : (b.model ?? "gpt-4o-mini"),
          choices: [
            {
              index: 0,
              message: { role: "assistant", content, refusal: null },
              logprobs: null,
              finish_reason: "stop",
            },
          ],
          usage: { prompt_tokens: 5, completion_tokens: content.length, total_tokens: 5 + content.length },
        });
        return;
      }
      if (req.method === "POST" && url.pathname === "/v1/embeddings") {
        // biome-ignore lint/suspicious/noExplicitAny: request JSON
        const b = (body ?? {}) as any;
        const input: string[] = Array.isArray(b.input) ? b.input : [String(b.input ?? "")];
        json(res, 200, {
          object: "list",
          data: input.map((s, index) => ({ object: "embedding", index, embedding: [s.length, 0.25, -0.5, 1] })),
          model: b.model ?? "text-embedding-3-small",
          usage: { prompt_tokens: 3, total_tokens: 3 },
        });
        return;
      }
      json(
        res,
        404,
        openaiError(`Unknown request URL: ${req.method} ${url.pathname}.`, "invalid_request_error", "unknown_url"),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    /** Changes which keys are accepted (e.g. after a rotation at the provider). */
    accept(keys: string[]): void {
      accepted = keys;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export type FakeOpenAI = Awaited<ReturnType<typeof startFakeOpenAI>>;
