"""Exponential backoff with full jitter."""

from __future__ import annotations

import random

from keyward._backoff import Backoff


def test_ceilings_double_up_to_the_cap_and_reset_on_success() -> None:
    b = Backoff(0.5, 30.0, lambda: 0.999)
    delays = [b.fail() for _ in range(9)]
    assert delays == [0.999 * c for c in (0.5, 1, 2, 4, 8, 16, 30, 30, 30)]
    assert b.failures == 9
    b.succeed()
    assert b.fail() == 0.999 * 0.5


def test_full_jitter_spans_zero_to_the_ceiling() -> None:
    rng = random.Random(1)
    samples = []
    for _ in range(2000):
        b = Backoff(1.0, 30.0, rng.random)
        b.fail()
        b.fail()
        samples.append(b.fail())  # third failure: [0, 4)
    assert all(0 <= s < 4 for s in samples)
    assert min(samples) < 0.1 and max(samples) > 3.9
    assert Backoff(1.0, 30.0, lambda: 0.0).fail() == 0.0


def test_many_failures_do_not_overflow() -> None:
    b = Backoff(0.5, 30.0, lambda: 0.5)
    for _ in range(10_000):
        assert b.fail() <= 15.0
