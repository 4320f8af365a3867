// A second baseline, for honesty: the same bare proxy as bare-proxy.mjs (no auth) but with the
// upstream client Keyward's gateway uses (undici's dispatcher). Against it, the gateway's ratio
// shows what the checks cost on the same data path; against bare-proxy.mjs (the issue's
// baseline), what Keyward costs compared with a competent node:http proxy.
import http from "node:http";
import { Agent } from "undici";

const upstreamPort = Number(process.env.UPSTREAM_PORT);
const dispatcher = new Agent({ connections: 512, keepAliveTimeout: 60_000 });
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "expect",
]);

const server = http.createServer((req, res) => {
  const headers = {};
  for (const name in req.headers) if (!HOP_BY_HOP.has(name)) headers[name] = req.headers[name];
  const hasBody = req.headers["transfer-encoding"] !== undefined || (req.headers["content-length"] ?? "0") !== "0";
  dispatcher.dispatch(
    {
      origin: `http://127.0.0.1:${upstreamPort}`,
      path: req.url,
      method: req.method,
      headers,
      body: hasBody ? req : null,
    },
    {
      onConnect() {},
      onHeaders(status, raw, resume) {
        const out = {};
        for (let i = 0; i < raw.length; i += 2) {
          const name = raw[i].toString("latin1").toLowerCase();
          if (!HOP_BY_HOP.has(name)) out[name] = raw[i + 1].toString("latin1");
        }
        res.writeHead(status, out);
        res.on("drain", resume);
        return true;
      },
      onData: (chunk) => res.write(chunk),
      onComplete: () => res.end(),
      onError: () => (res.headersSent ? res.destroy() : res.writeHead(502).end()),
    },
  );
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
