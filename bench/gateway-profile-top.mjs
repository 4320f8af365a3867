// The top frames of a V8 .cpuprofile by self time: `node bench/gateway-profile-top.mjs <file or
// dir> [n]` (a dir: its newest .cpuprofile). Frames are aggregated by function + file + line,
// weighted by sample count, so a function V8 split into several nodes is counted once. Shares are
// of the samples outside "(idle)": the CPU the process actually used.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

export function newestProfile(path) {
  if (!statSync(path).isDirectory()) return path;
  const files = readdirSync(path)
    .filter((f) => f.endsWith(".cpuprofile"))
    .map((f) => join(path, f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (files.length === 0) throw new Error(`no .cpuprofile in ${path}`);
  return files[0];
}

function where(url) {
  if (!url) return "";
  const file = url.startsWith("file://") ? fileURLToPath(url) : url;
  const rel = relative(ROOT, file);
  return rel.startsWith("node_modules/") ? rel.replace(/^node_modules\//, "") : rel.startsWith("..") ? file : rel;
}

/** `[{frame, samples, share}]`, highest self time first; `busy` is the non-idle sample count. */
export function topFrames(profile, n = 25) {
  const counts = new Map();
  for (const id of profile.samples) counts.set(id, (counts.get(id) ?? 0) + 1);
  const bySelf = new Map();
  let busy = 0;
  for (const node of profile.nodes) {
    const c = counts.get(node.id) ?? 0;
    if (c === 0) continue;
    const f = node.callFrame;
    const name = f.functionName || "(anonymous)";
    if (name === "(idle)") continue;
    busy += c;
    const key = `${name} ${where(f.url)}${f.url ? `:${f.lineNumber + 1}` : ""}`;
    bySelf.set(key, (bySelf.get(key) ?? 0) + c);
  }
  const rows = [...bySelf].sort((a, b) => b[1] - a[1]).slice(0, n);
  return { busy, rows: rows.map(([frame, samples]) => ({ frame, samples, share: samples / busy })) };
}

export function printTop(path, n) {
  const file = newestProfile(path);
  const { busy, rows } = topFrames(JSON.parse(readFileSync(file, "utf8")), n);
  console.log(`\n${file}: ${busy} busy samples\n`);
  console.log("| self % | function (file:line) |");
  console.log("|---:|---|");
  for (const r of rows) console.log(`| ${(r.share * 100).toFixed(1)} | \`${r.frame.trim()}\` |`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [, , path, n] = process.argv;
  if (!path) {
    console.error("usage: node bench/gateway-profile-top.mjs <file.cpuprofile | dir> [n]");
    process.exit(2);
  }
  printTop(path, Number(n ?? 25));
}
