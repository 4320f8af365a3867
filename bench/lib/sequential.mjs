// Latency of single requests one after another on one keep-alive connection: no queueing, so
// each sample is the server's own time for that request (plus a constant loopback round trip).
import http from "node:http";

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

/** One GET; resolves with its status and the elapsed milliseconds to the end of the body. */
export function timedGet(url, headers) {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const req = http.get(url, { agent, headers }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode, ms: Number(process.hrtime.bigint() - start) / 1e6 }));
    });
    req.on("error", reject);
  });
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export function summarize(samples) {
  const s = [...samples].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99), max: s[s.length - 1] };
}

export function closeAgent() {
  agent.destroy();
}
