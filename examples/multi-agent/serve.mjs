import http from "node:http";
import { pathToFileURL } from "node:url";

/**
 * An HTTP server that listens before it has its handler. Each agent must be registered in Keyward
 * with its URL before the workflow agent can be given its agent key, and the workflow needs that
 * key to be built: so the port comes first and the handler is attached once set-up is done.
 * Requests arriving in between get a 503.
 */
export async function openServer({ port = 0, host = "127.0.0.1" } = {}) {
  let handler;
  const server = http.createServer((req, res) => {
    if (handler) {
      handler(req, res);
      return;
    }
    sendError(res, 503, "starting", "the agent is still starting");
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  const hostPart = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    url: `http://${hostPart}:${address.port}`,
    /** Attaches the request listener (an Express app, a Hono listener, a node:http handler). */
    serve(listener) {
      handler = listener;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The `{error: {code, message}}` body Keyward and the SDK middleware use, for the agents' own errors. */
export function sendError(res, status, code, message) {
  const body = JSON.stringify({ error: { code, message } });
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

/** True when the module at `moduleUrl` is the script node was started with. */
export function isMain(moduleUrl) {
  return process.argv[1] !== undefined && moduleUrl === pathToFileURL(process.argv[1]).href;
}

/** An environment variable that must be set; exits with one line naming it otherwise. */
export function requiredEnv(name, why) {
  const value = process.env[name];
  if (value === undefined || value === "") {
    console.error(`${name} is not set: ${why}`);
    process.exit(2);
  }
  return value;
}

/** Keyward's base URL without a trailing slash (the verifier compares it with `iss` exactly). */
export function keywardUrlFromEnv() {
  return requiredEnv("KEYWARD_URL", "Keyward's base URL, e.g. http://127.0.0.1:8080").replace(/\/+$/, "");
}
