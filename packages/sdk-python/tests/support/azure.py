"""The Azure stand-in (Entra's token endpoint + Azure OpenAI) of ``examples/python-agents``: the
one the example runs against, loaded from there (see ``support.examples``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from support.examples import load_example

if TYPE_CHECKING:  # mypy finds it through mypy_path (pyproject.toml)
    from azure_standin import SCOPE, AzureStandin, ChatCall
else:
    _module = load_example("azure_standin")
    SCOPE, AzureStandin, ChatCall = _module.SCOPE, _module.AzureStandin, _module.ChatCall

__all__ = ["SCOPE", "AzureStandin", "ChatCall"]
