// The agent every scenario ends at: a minimal node:http server answering 200 with a small body.
// Runs in its own process so it does not share an event loop with what is measured.
import http from "node:http";

const body = Buffer.from("hello from the agent\n");
const server = http.createServer((req, res) => {
  req.resume();
  res.writeHead(200, { "content-type": "text/plain", "content-length": body.length });
  res.end(body);
});
server.keepAliveTimeout = 65_000;
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.on("SIGTERM", () => process.exit(0));
