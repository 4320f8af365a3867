// Prints every import cycle between domain folders of packages/*/src and exits 1 if there is one.
// The graph is folder-level: a file in tokens/ importing ../gateway/x.js is the edge tokens → gateway;
// a file directly in src/ (app.ts, config.ts, errors.ts, …) is a node of its own, since app.ts sits
// above every folder and errors.ts below them all. Only relative
// import/export specifiers of production files count (not *.test.ts); `import type` counts too,
// since a type-only cycle still means two folders cannot be read or moved apart.
// Usage: node scripts/check-import-cycles.mjs [root]   (root defaults to the working directory)
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";

// Imports that point up a layer and that we knowingly keep for now, each with its reason, as
// "package: file -> folder/" (that one file may import that folder). The checker leaves these
// imports out of the graph, so any other cycle (a new one, or another file making the same
// edge) still fails. Remove an entry once its import is gone; a stale entry is reported.
// Empty since the last twelve were removed by moving what both sides shared below them
// (docs/architecture.md, "Layers"): prefer that to a new entry.
const ALLOWED = new Map([]);

const root = resolve(process.argv[2] ?? ".");
const pkgsDir = join(root, "packages");

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      if (name !== "node_modules") walk(path, out);
    } else if (name.endsWith(".ts") && !name.endsWith(".test.ts") && !name.endsWith(".d.ts")) {
      out.push(path);
    }
  }
  return out;
}

// import … from "x", export … from "x", import "x", import("x"): the specifier is the string.
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(?\s*)(["'])(\.{1,2}\/[^"'\n]+)\1/g;
// Comments could hold example imports; strip them first (strings with // inside are not specifiers we match).
const stripComments = (text) => text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`])\/\/.*$/gm, "$1");

/** The folder graph of one package's src/: Map<folder, Map<folder, Map<file, specifier>>>. */
function folderGraph(srcDir) {
  const folderOf = (file) => {
    const rel = relative(srcDir, file).split(sep);
    return rel.length > 1 ? `${rel[0]}/` : rel[0].replace(/\.js$/, ".ts");
  };
  const graph = new Map();
  for (const file of walk(srcDir, [])) {
    const from = folderOf(file);
    if (!graph.has(from)) graph.set(from, new Map());
    for (const m of stripComments(readFileSync(file, "utf8")).matchAll(SPECIFIER)) {
      const target = resolve(dirname(file), m[2]);
      if (relative(srcDir, target).startsWith("..")) continue; // another package: not this graph
      const to = folderOf(target);
      if (to === from) continue;
      const edges = graph.get(from);
      if (!edges.has(to)) edges.set(to, new Map());
      const byFile = edges.get(to);
      const rel = relative(srcDir, file).split(sep).join("/");
      if (!byFile.has(rel)) byFile.set(rel, m[2]);
    }
  }
  return graph;
}

/** Strongly connected components of the graph (Tarjan), each a sorted list of folders. */
function components(graph) {
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const out = [];
  let next = 0;
  const visit = (v) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v)?.keys() ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
    }
    if (low.get(v) === index.get(v)) {
      const scc = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      out.push(scc.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return out;
}

/**
 * The cycles to show: for every edge inside a strongly connected component, the shortest cycle
 * through it (breadth-first back to its start). Every edge that closes a cycle is shown, without
 * listing every elementary cycle (a tangle of ten folders has thousands). Each cycle once, rotated
 * to start at its alphabetically first folder.
 */
function cycles(graph) {
  const found = new Set();
  for (const scc of components(graph)) {
    if (scc.length < 2) continue;
    const inside = new Set(scc);
    for (const from of scc) {
      for (const to of graph.get(from)?.keys() ?? []) {
        if (!inside.has(to)) continue;
        const prev = new Map([[to, null]]);
        const queue = [to];
        while (queue.length > 0 && !prev.has(from)) {
          const n = queue.shift();
          for (const m of [...(graph.get(n)?.keys() ?? [])].sort()) {
            if (inside.has(m) && !prev.has(m)) {
              prev.set(m, n);
              queue.push(m);
            }
          }
        }
        const path = [];
        for (let n = from; n !== null; n = prev.get(n)) path.unshift(n);
        const ring = [from, ...path.slice(0, -1)];
        const first = ring.indexOf([...ring].sort()[0]);
        const rotated = [...ring.slice(first), ...ring.slice(0, first)];
        found.add([...rotated, rotated[0]].join(" -> "));
      }
    }
  }
  return [...found].sort((a, b) => a.split(" -> ").length - b.split(" -> ").length || a.localeCompare(b));
}

let failed = false;
let packages = [];
try {
  packages = readdirSync(pkgsDir).filter((p) => statSync(join(pkgsDir, p, "src"), { throwIfNoEntry: false }));
} catch {
  console.error(`no packages/ folder under ${root}`);
  process.exit(2);
}
for (const pkg of packages.sort()) {
  const graph = folderGraph(join(pkgsDir, pkg, "src"));
  for (const [entry, reason] of ALLOWED) {
    const [p, file, to] = entry.split(/: | -> /);
    if (p !== pkg) continue;
    const from = file.includes("/") ? `${file.split("/")[0]}/` : file;
    const byFile = graph.get(from)?.get(to);
    if (byFile?.delete(file)) {
      if (byFile.size === 0) graph.get(from).delete(to);
      console.log(`allowed for now: ${entry} (${reason})`);
    } else console.log(`stale allowance (no such import any more; remove it): ${entry}`);
  }
  for (const cycle of cycles(graph)) {
    const hops = cycle.split(" -> ");
    const why = hops.slice(1).map((to, i) => {
      const [file, spec] = [...graph.get(hops[i]).get(to)][0];
      return `    ${file} imports ${spec}`;
    });
    failed = true;
    console.error(`import cycle in packages/${pkg}/src: ${cycle}\n${why.join("\n")}`);
  }
}
if (failed) {
  console.error('Folders must import one way (docs/architecture.md, "Layers"): move the shared code below both.');
  process.exit(1);
}
console.log("no import cycles between folders");
