"""Fixtures of the examples' tests: this folder's modules importable, and the environment run.py gets."""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))  # the stand-in and the services, for the in-process tests

# langchain-core 1.6 and langgraph-sdk import `langchain_protocol` (a package of protocol types) at
# import time. Where it cannot be installed, the tests give the example's processes an empty
# stand-in for it, so LangGraph itself still runs; a warning in the summary says so.
_PROTOCOL_STUB = '''"""Test stand-in: every name is an empty dict type (the real one holds TypedDicts)."""
def __getattr__(name):
    return type(name, (dict,), {})
'''


@pytest.fixture(scope="session")
def example_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment to run ``run.py`` with: ours, plus the langchain_protocol stand-in if needed."""
    env = dict(os.environ)
    if importlib.util.find_spec("langchain_protocol") is not None:
        return env
    warnings.warn(
        "langchain-protocol is not installed (langchain-core and langgraph need it): the multi-agent "
        "tests run LangGraph with an empty stand-in for it. Install it to test the real thing.",
        stacklevel=1,
    )
    stub = tmp_path_factory.mktemp("protocol-stub") / "langchain_protocol"
    stub.mkdir()
    (stub / "__init__.py").write_text(_PROTOCOL_STUB)
    (stub / "protocol.py").write_text(_PROTOCOL_STUB)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(stub.parent), env.get("PYTHONPATH", "")) if p)
    return env
