// A webhook receiver for Keyward's signed events (Standard Webhooks), with no dependency:
//   WEBHOOK_SECRET=whsec_… PORT=4400 node examples/webhook-receiver/receiver.mjs
// It checks the signature and the timestamp's age, acts on each webhook-id once (Keyward may send
// an event again after a crash or a lost answer: same id), and prints one line per event:
//   event <webhook-id> <type>     a new, verified event (here is where your handler goes)
//   duplicate <webhook-id>         seen before: answered 204 and ignored
// Anything unsigned, badly signed or too old is answered 401 and never acted on.
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";

const MAX_BODY_BYTES = 1024 * 1024;

/** Verifies one delivery; returns the parsed event, or why it is refused. */
export function verifyWebhook(secret, headers, body, { toleranceS = 300, now = Date.now() } = {}) {
  const id = headers["webhook-id"];
  const timestamp = headers["webhook-timestamp"];
  const signatures = headers["webhook-signature"];
  if (typeof id !== "string" || typeof timestamp !== "string" || typeof signatures !== "string") {
    return { ok: false, reason: "missing webhook headers" };
  }
  const ts = Number(timestamp);
  // Old or future-dated deliveries are refused, so a captured request cannot be replayed later.
  if (!/^\d+$/.test(timestamp) || Math.abs(now / 1000 - ts) > toleranceS) {
    return { ok: false, reason: "timestamp outside the tolerance" };
  }
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest();
  // The header may carry several space-separated signatures (secret rotation): one must match.
  const matches = signatures.split(" ").some((s) => {
    const [version, value] = s.split(",");
    if (version !== "v1" || !value) return false;
    const given = Buffer.from(value, "base64");
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  if (!matches) return { ok: false, reason: "bad signature" };
  try {
    return { ok: true, id, event: JSON.parse(body) };
  } catch {
    return { ok: false, reason: "body is not JSON" };
  }
}

/**
 * The receiver: verify, then act once per webhook-id. `seen` is in memory and bounded here; a
 * real deployment keeps ids in its database, in the same transaction as what it does.
 */
export function createReceiver({
  secret,
  toleranceS = 300,
  onEvent = () => {},
  onDuplicate = () => {},
  maxIds = 10_000,
}) {
  const seen = new Set();
  return createServer((req, res) => {
    const chunks = [];
    let size = 0;
    req.on("data", (c) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) req.destroy();
      else chunks.push(c);
    });
    req.on("end", () => {
      const result = verifyWebhook(secret, req.headers, Buffer.concat(chunks).toString("utf8"), { toleranceS });
      if (!result.ok) {
        res.writeHead(401, { "content-type": "text/plain" }).end(`${result.reason}\n`);
        return;
      }
      if (seen.has(result.id)) {
        onDuplicate(result.id);
      } else {
        seen.add(result.id);
        if (seen.size > maxIds) seen.delete(seen.values().next().value);
        onEvent(result.id, result.event);
      }
      res.writeHead(204).end();
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const secret = process.env.WEBHOOK_SECRET;
  if (!secret?.startsWith("whsec_")) {
    console.error("receiver.mjs: set WEBHOOK_SECRET to the endpoint's whsec_… secret (the one in Keyward's config)");
    process.exit(2);
  }
  const server = createReceiver({
    secret,
    toleranceS: Number(process.env.TOLERANCE_S ?? 300),
    onEvent: (id, event) => console.log(`event ${id} ${event.type}`),
    onDuplicate: (id) => console.log(`duplicate ${id}`),
  });
  server.on("error", (err) => {
    console.error(`receiver.mjs: ${err.message}`);
    process.exit(1);
  });
  server.listen(Number(process.env.PORT ?? 4400), process.env.HOST ?? "127.0.0.1", () => {
    const { address, port } = server.address();
    console.log(`listening on http://${address}:${port}`);
  });
  process.on("SIGTERM", () => server.close(() => process.exit(0)));
  process.on("SIGINT", () => server.close(() => process.exit(0)));
}
