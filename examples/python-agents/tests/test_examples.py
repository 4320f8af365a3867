"""The examples run the way the README says (``python examples/python-agents/run.py …``, a real
Keyward, each service its own process), checked by what a person running them sees. Keyward runs on
a free port and a temporary data dir here instead of 8085/8086 and ``.keyward/``."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).resolve().parents[1]
REPO = HERE.parents[1]
RUN = HERE / "run.py"
SERVER_MAIN = REPO / "packages" / "server" / "dist" / "cli" / "main.js"
RUN_TIMEOUT_S = 150

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(not SERVER_MAIN.exists(), reason="the server is not built (npm run build)"),
]

# What must never appear in anything the examples print: Keyward keys and JWTs (the caller's, the
# workflow's, the delegated ones), and the Entra stand-in's tokens.
SECRET_SHAPES = re.compile(r"kw[kar]_[0-9A-Za-z]{8,}|eyJ[0-9A-Za-z_-]{10,}|standin-entra-\S+")


def run_example(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RUN), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def assert_clean(output: str) -> None:
    assert "Traceback" not in output, output
    leaked = SECRET_SHAPES.findall(output)
    assert not leaked, f"secrets in the output: {[s[:8] + '…' for s in leaked]}"


def refuses_connections(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError:
        return True
    return False


# -- multi-agent --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def multi_agent_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("multi-agent") / "keyward"


@pytest.fixture(scope="module")
def multi_agent(example_env: dict[str, str], multi_agent_dir: Path) -> subprocess.CompletedProcess[str]:
    return run_example(["multi-agent", "--port", "0", "--data-dir", str(multi_agent_dir)], example_env)


def test_multi_agent_research_acts_for_the_caller_through_the_workflow(
    multi_agent: subprocess.CompletedProcess[str],
) -> None:
    out = multi_agent.stdout
    assert multi_agent.returncode == 0, out + multi_agent.stderr
    assert re.search(r"^keyward\s+\| keyward listening on http://127\.0\.0\.1:\d+$", out, re.M)
    assert re.search(r"^research\s+\| research listening on http://127\.0\.0\.1:\d+$", out, re.M)
    assert re.search(r"^workflow\s+\| workflow listening on http://127\.0\.0\.1:\d+$", out, re.M)
    allowed = out.split("-> consumer:demo-limited")[0]
    assert (
        '<- 200: On "how does token exchange delegate between agents?", research found 2 sources: ' in allowed
    )
    assert "research acted for consumer:demo with act: agent:workflow (scope agent:research)" in allowed
    # As research itself logged it, from the token the gateway forwarded to it.
    assert "research <- /invoke for consumer:demo via agent:workflow" in allowed
    assert "demo ok:" in out
    assert out.rstrip().endswith("stopped everything this run started")
    assert_clean(out + multi_agent.stderr)


def test_multi_agent_caller_without_agent_research_is_refused(
    multi_agent: subprocess.CompletedProcess[str],
) -> None:
    assert multi_agent.returncode == 0, multi_agent.stdout + multi_agent.stderr
    refused = multi_agent.stdout.split("-> consumer:demo-limited (key scopes: agent:workflow)")[1]
    assert "workflow <- /invoke for consumer:demo-limited" in refused  # the gateway let it reach the workflow
    assert re.search(
        r"^<- 403 invalid_target: Keyward refused to delegate to research: \S.*agent:research", refused, re.M
    ), refused
    # ... and Keyward never let the call reach research.
    assert "research <- /invoke for consumer:demo-limited" not in refused
    assert_clean(multi_agent.stdout + multi_agent.stderr)


def test_multi_agent_serve_answers_the_printed_curl_and_stops_on_ctrl_c(
    example_env: dict[str, str], multi_agent_dir: Path, multi_agent: subprocess.CompletedProcess[str]
) -> None:
    # Same data dir as the run above: running the example again is fine.
    proc = subprocess.Popen(
        [
            sys.executable,
            str(RUN),
            "multi-agent",
            "--serve",
            "--port",
            "0",
            "--data-dir",
            str(multi_agent_dir),
        ],
        cwd=REPO,
        env=example_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    lines: queue.Queue[str | None] = queue.Queue()
    seen: list[str] = []
    threading.Thread(target=_pump, args=(proc, lines), daemon=True).start()
    try:
        for line in _lines_until(
            lines, "Ctrl-C stops everything.", deadline=time.monotonic() + RUN_TIMEOUT_S
        ):
            seen.append(line)
        text = "\n".join(seen)
        urls = dict(
            re.findall(r"^(keyward|research|workflow)\s+\| \S+ listening on (http://\S+)$", text, re.M)
        )
        assert set(urls) == {"keyward", "research", "workflow"}, text
        key = re.search(r"^  export CALLER_KEY=(kwk_\S+)$", text, re.M)
        assert key is not None, text
        res = httpx.post(
            f"{urls['keyward']}/agents/workflow/invoke",
            json={"input": {"question": "what is least privilege?"}},
            headers={"authorization": f"Bearer {key.group(1)}"},
            timeout=30,
        )
        assert res.status_code == 200, res.text
        acted_for = res.json()["output"]["research"]["result"]["acted_for"]
        assert (acted_for["sub"], acted_for["act_chain"]) == ("consumer:demo", ["agent:workflow"])

        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        assert proc.wait(60) == 0
        rest: list[str] = []
        while (after := lines.get(timeout=10)) is not None:
            rest.append(after)
        assert "interrupted: stopped everything this run started" in rest, rest
        assert_clean("\n".join(rest))
        for name, url in urls.items():
            assert refuses_connections(url), f"{name} still listens on {url}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _pump(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def _lines_until(lines: queue.Queue[str | None], last: str, deadline: float) -> Iterator[str]:
    while True:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            pytest.fail(f"no {last!r} line in time")
        if line is None:
            pytest.fail(f"run.py ended before printing {last!r}")
        yield line
        if line == last:
            return


# -- azure-openai -------------------------------------------------------------------------------


def test_azure_openai_calls_with_a_token_from_keyward_then_with_the_refreshed_one(
    example_env: dict[str, str], tmp_path: Path
) -> None:
    done = run_example(
        ["azure-openai", "--port", "0", "--data-dir", str(tmp_path / "keyward"), "--token-lifetime", "6"],
        example_env,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    calls = re.findall(
        r"^agent\s+\| call (\d): \(Azure OpenAI stand-in, deployment gpt-4o-mini, Entra token #(\d+)\) "
        r"You said: Say hello in French$",
        out,
        re.M,
    )
    assert [c[0] for c in calls] == ["1", "2"], out
    assert int(calls[1][1]) > int(calls[0][1]), out  # the second call carried a newer token
    assert "Keyward pushed a new azure_openai token: the same client, no restart" in out
    assert "demo ok: the agent called Azure OpenAI with Entra token #" in out
    assert_clean(out + done.stderr)


# -- failures a person can act on ---------------------------------------------------------------


def test_a_taken_keyward_port_is_one_line_and_exit_1(example_env: dict[str, str], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_example(
            ["multi-agent", "--port", str(port), "--data-dir", str(tmp_path / "k")], example_env
        )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"run.py multi-agent: keyward exited (1) before listening: keyward: port {port} on 127.0.0.1 "
        "is already in use"
    ), done.stderr
    assert_clean(done.stdout + done.stderr)
