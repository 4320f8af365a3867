// The baseline: a competent reverse proxy on bare node:http with no auth at all. Keep-alive to
// the upstream (same Agent settings as Keyward's proxy), hop-by-hop headers dropped, bodies
// streamed both ways. What Keyward costs beyond this is the price of its checks.
import http from "node:http";

const upstreamPort = Number(process.env.UPSTREAM_PORT);
const agent = new http.Agent({ keepAlive: true, maxSockets: 512, maxFreeSockets: 256, scheduling: "lifo" });
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
]);

function copyHeaders(from) {
  const out = {};
  for (const [name, value] of Object.entries(from)) if (!HOP_BY_HOP.has(name)) out[name] = value;
  return out;
}

const server = http.createServer((req, res) => {
  const headers = copyHeaders(req.headers);
  headers.host = `127.0.0.1:${upstreamPort}`;
  const upReq = http.request(
    { hostname: "127.0.0.1", port: upstreamPort, method: req.method, path: req.url, headers, agent },
    (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, copyHeaders(upRes.headers));
      upRes.pipe(res);
    },
  );
  upReq.on("error", () => {
    if (res.headersSent) res.destroy();
    else res.writeHead(502).end();
  });
  req.pipe(upReq);
});
server.keepAliveTimeout = 65_000;
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.on("SIGTERM", () => process.exit(0));
