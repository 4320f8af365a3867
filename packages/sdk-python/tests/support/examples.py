"""Code of ``examples/python-agents`` the SDK's tests reuse, loaded by its path: an example never
imports test code, so a stand-in the two share lives with the examples and the tests take it here.

Example::

    AzureStandin = load_example("azure_standin").AzureStandin
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parents[4] / "examples" / "python-agents"


def load_example(name: str) -> ModuleType:
    """The example module ``name`` (``examples/python-agents/<name>.py``), imported once under its
    own name, as the examples import it (so both suites in one run share one module)."""
    path = EXAMPLES / f"{name}.py"
    loaded = sys.modules.get(name)
    if loaded is not None and Path(getattr(loaded, "__file__", "") or "").resolve() == path:
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"no example module at {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
