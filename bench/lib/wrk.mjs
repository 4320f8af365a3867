// Runs wrk and reads its --latency report.
import { spawn } from "node:child_process";
import { track } from "./procs.mjs";

const UNIT_MS = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function toMs(text) {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text.trim());
  if (!m) throw new Error(`wrk: cannot read duration "${text}"`);
  return Number(m[1]) * UNIT_MS[m[2]];
}

export function parseWrk(output) {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(output);
  if (!rps) throw new Error(`wrk: no Requests/sec in output:\n${output}`);
  const pct = {};
  for (const m of output.matchAll(/^\s+(50|75|90|99)%\s+(\S+)\s*$/gm)) pct[`p${m[1]}`] = toMs(m[2]);
  const total = /(\d+) requests in/.exec(output);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(output);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  return {
    rps: Number(rps[1]),
    latencyMs: pct,
    requests: total ? Number(total[1]) : null,
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socketErrors: sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
  };
}

/** `wrk -t1 -c<connections> -d<seconds>s --latency [-H …] url`. */
export function runWrk(url, { seconds, connections, headers = {} }) {
  const args = ["-t1", `-c${connections}`, `-d${seconds}s`, "--latency"];
  for (const [k, v] of Object.entries(headers)) args.push("-H", `${k}: ${v}`);
  args.push(url);
  return new Promise((resolve, reject) => {
    const child = track("wrk", spawn("wrk", args, { stdio: ["ignore", "pipe", "pipe"] }));
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      out += d;
    });
    child.once("error", reject);
    child.once("exit", (code) => {
      if (code !== 0) return reject(new Error(`wrk exited ${code}:\n${out}`));
      try {
        const r = parseWrk(out);
        if (r.non2xx > 0 || r.socketErrors > 0) {
          return reject(
            new Error(`wrk saw ${r.non2xx} non-2xx responses and ${r.socketErrors} socket errors:\n${out}`),
          );
        }
        resolve(r);
      } catch (e) {
        reject(e);
      }
    });
  });
}
