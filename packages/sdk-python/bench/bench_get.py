"""How many ``kw.get(name)`` per second a connected client answers (memory only).

Connects to the Keyward given by ``KEYWARD_URL`` and ``KEYWARD_AGENT_KEY`` and reads the credential
named by ``KEYWARD_CREDENTIAL``; without them, starts a real server of this repository (as the tests
do), creates an agent and a credential, and reads that. The baseline, measured in the same run, is a
bare dict lookup through a method call: the ratio says what the client's checks cost on top of it.

Prints one JSON line at the end: ``{"get_per_s": …, "baseline_per_s": …, "ratio": …}``.

    .venv/bin/python bench/bench_get.py
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from keyward import Keyward

ROUNDS = 5
N = 200_000


def per_second(fn: object, name: str) -> float:
    best = 0.0
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(N):
            fn(name)  # type: ignore[operator]
        best = max(best, N / (time.perf_counter() - start))
    return best


def main() -> None:
    with ExitStack() as stack:
        url, key, name = (
            os.environ.get(k) for k in ("KEYWARD_URL", "KEYWARD_AGENT_KEY", "KEYWARD_CREDENTIAL")
        )
        if not (url and key and name):
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
            from support.server import running_keyward, unique

            server = stack.enter_context(running_keyward())
            name = unique("bench")
            _, key = server.admin.agent_with_credentials({name: "sk-bench-value"})
            url = server.url
        kw = stack.enter_context(Keyward.connect(url=url, token=key))

        class Baseline:
            def __init__(self) -> None:
                self.d = {name: "v"}

            def get(self, n: str) -> str:
                return self.d[n]

        baseline = per_second(Baseline().get, name)
        got = per_second(kw.get, name)
    print(
        json.dumps(
            {"get_per_s": round(got), "baseline_per_s": round(baseline), "ratio": round(got / baseline, 3)}
        )
    )


if __name__ == "__main__":
    main()
