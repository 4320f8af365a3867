"""The processes an example runs: Keyward itself (``node packages/server/dist/cli/main.js serve``) and
the Python services, each started with exactly the environment it needs, ready once it prints
``listening on http://…``, its output passed through with its name in front, stopped with SIGTERM.

Children run in a session of their own, so a Ctrl-C in the terminal reaches the runner only and the
runner stops them in order (a child interrupted mid-import would print a traceback instead).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

from admin import ExampleError

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SERVER_MAIN = REPO / "packages" / "server" / "dist" / "cli" / "main.js"
LISTENING = re.compile(r"listening on (http://\S+)")
START_TIMEOUT_S = 60.0
#: What a child gets of our environment: finding programs and modules, the locale; nothing else.
_PASSED_ON = ("PATH", "PYTHONPATH", "VIRTUAL_ENV", "HOME", "LANG", "LC_ALL", "SYSTEMROOT")
STOP_TIMEOUT_S = 15.0


class Child:
    """One running child process. ``url`` is what it printed after ``listening on``.

    Its stdout is shown as it comes, its stderr once it listens (or at once with
    ``hold_errors=False``): a start that fails is reported as the one line of :meth:`wait_ready`, not
    as the traceback it may have printed; one that succeeds shows what it held back then.
    """

    def __init__(self, name: str, proc: subprocess.Popen[str], hold_errors: bool = True) -> None:
        self.name = name
        self.proc = proc
        self.url = ""
        self.lines: list[str] = []
        self.errors: list[str] = []
        #: stderr lines that are not log records: a start failure's own words (Keyward's e.g.).
        self._said: list[str] = []
        self._held: list[str] = []
        self._lock = threading.Lock()
        self._hold_errors = hold_errors
        self._ready = threading.Event()
        assert proc.stdout is not None and proc.stderr is not None
        self._threads = [
            threading.Thread(target=self._pump, args=(proc.stdout, False), daemon=True),
            threading.Thread(target=self._pump, args=(proc.stderr, True), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _pump(self, stream: IO[str], is_stderr: bool) -> None:
        for raw in iter(stream.readline, ""):
            line, is_record = _readable(raw.rstrip("\n"))
            (self.errors if is_stderr else self.lines).append(line)
            if is_stderr and not is_record:
                self._said.append(line)
            m = LISTENING.search(line)
            if m and not self._ready.is_set():
                self.url = m.group(1).rstrip("/")
                self._ready.set()
            with self._lock:
                if is_stderr and self._hold_errors and not self.url:
                    self._held.append(line)
                else:
                    self._show(line)
        if not is_stderr:
            self._ready.set()  # no more output: wait_ready decides from the exit status

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> str:
        """The child's URL once it listens; an ExampleError with its last words if it exits first."""
        self._ready.wait(timeout)
        if self.url:
            with self._lock:  # what it said on stderr while starting (Keyward's warnings, e.g.)
                for line in self._held:
                    self._show(line)
                self._held.clear()
            return self.url
        try:
            code: int | None = self.proc.wait(5)
        except subprocess.TimeoutExpired:
            code = None
        self.stop()
        last = (self._said or self.errors or self.lines or ["no output"])[-1]
        if code is None:
            raise ExampleError(f"{self.name} did not start within {timeout:.0f} s (last output: {last})")
        raise ExampleError(f"{self.name} exited ({code}) before listening: {last}")

    def _show(self, line: str) -> None:
        print(f"{self.name:<9}| {line}", flush=True)

    def wait_exit(self, timeout: float) -> int:
        """The exit status once the child ends by itself; stopped and an ExampleError after ``timeout``."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise ExampleError(f"{self.name} did not finish within {timeout:.0f} s") from None
        for t in self._threads:
            t.join(5)
        return code

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT_S; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for t in self._threads:
            t.join(5)
        return self.proc.returncode


def _readable(line: str) -> tuple[str, bool]:
    """Keyward logs JSON lines (pino): show their level and message only, never the whole record.
    The flag tells a log record from a line the program wrote itself."""
    if not line.startswith("{"):
        return line, False
    try:
        record = json.loads(line)
    except ValueError:
        return line, False
    if not isinstance(record, dict):
        return line, False
    return f"{record.get('level', 'log')}: {record.get('msg', '')}", True


def spawn(name: str, args: list[str], env: dict[str, str], hold_errors: bool = True) -> Child:
    """Starts ``args`` with ``env`` (plus what ``_PASSED_ON`` names, nothing else of ours)."""
    base = {k: v for k, v in os.environ.items() if k in _PASSED_ON}
    try:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and node, with fixed arguments
            args,
            env={**base, "PYTHONUNBUFFERED": "1", **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except OSError as err:
        raise ExampleError(f"cannot start {name}: {err.strerror}") from None
    return Child(name, proc, hold_errors)


def python_script(script: str, *args: str) -> list[str]:
    """The command running one of this folder's scripts with the interpreter running us."""
    return [sys.executable, str(HERE / script), *args]


def start_keyward(port: int, data_dir: Path, admin_token: str) -> Child:
    """``keyward serve`` of this repository on 127.0.0.1:port with its own data dir (SQLite)."""
    node = shutil.which("node")
    if node is None:
        raise ExampleError("node is not on PATH: Keyward runs on Node.js 20 or later")
    if not SERVER_MAIN.exists():
        raise ExampleError(
            f"{SERVER_MAIN.relative_to(REPO)} is missing: run `npm install && npm run build` "
            "at the repository root first"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [
        node,
        str(SERVER_MAIN),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    child = spawn("keyward", args, {"KEYWARD_ADMIN_TOKEN": admin_token, "KEYWARD_LOG_LEVEL": "warn"})
    child.wait_ready()
    return child
