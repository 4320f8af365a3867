#!/usr/bin/env node
// The Python SDK's tests and lint, run by `npm test` / `npm run lint` after the Node ones.
//
//   node scripts/python.mjs test   → pytest (packages/sdk-python/tests, examples/python-agents)
//   node scripts/python.mjs lint   → ruff check, ruff format --check, mypy --strict (SDK, its tests and
//                                    benchmarks, examples/python-agents)
//
// Needs Python ≥ 3.10 (`KEYWARD_PYTHON` names the interpreter; default python3). Without one the
// step is skipped with a printed reason — except under CI (`CI=true`), where it fails. The virtual
// environment lives in packages/sdk-python/.venv and is (re)made when pyproject.toml or the
// requirements files change.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const pkg = join(root, "packages", "sdk-python");
const venv = join(pkg, ".venv");
const venvPython = join(venv, "bin", "python");
const stampFile = join(venv, ".keyward-stamp");
const mode = process.argv[2];

if (mode !== "test" && mode !== "lint") {
  console.error("usage: node scripts/python.mjs test|lint [pytest args…]");
  process.exit(2);
}

function run(cmd, args, opts = {}) {
  const res = spawnSync(cmd, args, { stdio: "inherit", cwd: root, ...opts });
  if (res.error) throw res.error;
  return res.status ?? 1;
}

function skip(reason) {
  if (process.env.CI === "true") {
    console.error(`Python SDK ${mode}: ${reason} (CI needs Python ≥ 3.10)`);
    process.exit(1);
  }
  console.log(`skipping the Python SDK ${mode}: ${reason}`);
  process.exit(0);
}

const python = process.env.KEYWARD_PYTHON || "python3";
const probe = spawnSync(python, ["-c", "import sys, venv; print('%d.%d' % sys.version_info[:2])"], {
  encoding: "utf8",
});
if (probe.error || probe.status !== 0) skip(`${python} with the venv module was not found`);
const [major, minor] = probe.stdout.trim().split(".").map(Number);
if (major < 3 || (major === 3 && minor < 10)) skip(`${python} is Python ${probe.stdout.trim()}, older than 3.10`);

const inputs = ["pyproject.toml", "requirements-langchain-deps.txt", "requirements-langchain.txt"].map((f) =>
  readFileSync(join(pkg, f)),
);
const stamp = createHash("sha256").update(Buffer.concat(inputs)).digest("hex");
if (!existsSync(venvPython) || !existsSync(stampFile) || readFileSync(stampFile, "utf8") !== stamp) {
  console.log("Python SDK: creating packages/sdk-python/.venv (first use, or its requirements changed)…");
  rmSync(venv, { recursive: true, force: true });
  const pipQuiet = ["-q", "--disable-pip-version-check"];
  const failed =
    run(python, ["-m", "venv", venv]) ||
    run(venvPython, ["-m", "pip", "install", ...pipQuiet, "-e", `${pkg}[test]`]) ||
    run(venvPython, ["-m", "pip", "install", ...pipQuiet, "-r", join(pkg, "requirements-langchain-deps.txt")]) ||
    run(venvPython, ["-m", "pip", "install", ...pipQuiet, "--no-deps", "-r", join(pkg, "requirements-langchain.txt")]);
  if (failed) {
    console.error("Python SDK: installing the test environment failed (see pip's output above)");
    process.exit(1);
  }
  writeFileSync(stampFile, stamp);
}

const tools = (name) => join(venv, "bin", name);
let status;
if (mode === "test") {
  const targets = ["packages/sdk-python/tests", "examples/python-agents"].filter((p) => existsSync(join(root, p)));
  status = run(venvPython, [
    "-m",
    "pytest",
    "-q",
    "-p",
    "no:cacheprovider",
    "-c",
    join(pkg, "pyproject.toml"),
    "--rootdir",
    root,
    ...targets,
    ...process.argv.slice(3),
  ]);
} else {
  const paths = [
    "packages/sdk-python/src",
    "packages/sdk-python/tests",
    "packages/sdk-python/bench",
    "examples/python-agents",
  ].filter((p) => existsSync(join(root, p)));
  status =
    run(tools("ruff"), ["check", ...paths]) ||
    run(tools("ruff"), ["format", "--check", ...paths]) ||
    run(tools("mypy"), ["--config-file", join(pkg, "pyproject.toml")], { cwd: pkg }) ||
    // Tests and benchmarks are code too: the same strictness (their helpers import as top-level modules).
    run(tools("mypy"), ["--strict", "--explicit-package-bases", "tests", "bench"], {
      cwd: pkg,
      env: { ...process.env, MYPYPATH: join(pkg, "tests") },
    }) ||
    (existsSync(join(root, "examples/python-agents"))
      ? run(tools("mypy"), ["--strict", "--explicit-package-bases", "."], { cwd: join(root, "examples/python-agents") })
      : 0);
}
process.exit(status);
