"""Many threads reading while values rotate: no exception, always one of the versions written."""

from __future__ import annotations

import threading
import time

from client_support import wait_until
from keyward import Keyward
from support.server import KeywardServer, unique


def test_concurrent_get_during_rotations_sees_only_valid_values(keyward: KeywardServer) -> None:
    name = unique("openai")
    _, key = keyward.admin.agent_with_credentials({name: "v-0"})
    valid = {f"v-{i}" for i in range(21)}
    stop = threading.Event()
    failures: list[BaseException] = []
    reads = [0] * 8

    def reader(i: int) -> None:
        try:
            while not stop.is_set():
                value = kw.get(name)
                if value not in valid:
                    raise AssertionError(f"unexpected value {value!r}")
                reads[i] += 1
                if reads[i] % 1000 == 0:
                    time.sleep(0)  # let the rotations' requests through the GIL
        except BaseException as exc:
            failures.append(exc)

    with Keyward.connect(keyward.url, key) as kw:
        threads = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for i in range(1, 21):
            keyward.admin.set_credential(name, f"v-{i}")
        wait_until(lambda: kw.get(name) == "v-20")
        stop.set()
        for t in threads:
            t.join(10)
    assert failures == []
    assert all(n > 0 for n in reads)
