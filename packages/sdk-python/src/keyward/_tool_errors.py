"""The failures of a wrapped tool's call (see ``keyward.tools``, which exports them)."""

from __future__ import annotations

from .errors import KeywardError


class UserCredentialError(KeywardError):
    """A tool call refused before the tool ran: no user token (``missing_user_token``), or
    Keyward's answer to ``POST /v1/tools/credentials``: ``invalid_token`` (401),
    ``credential_not_granted`` (403), ``credential_not_found`` (404) or another server code. The
    message names credentials at most, never a value or the user's token.

    Example::

        try:
            await list_functions(region="eu")
        except UserCredentialError as err:
            if err.code == "credential_not_found":
                return "connect your cloud account first"
            raise
    """

    __module__ = "keyward.tools"


class ToolTimeoutError(KeywardError):
    """An async wrapped tool did not finish within its ``timeout`` (code ``tool_timeout``); it was
    cancelled.

    Example::

        try:
            await slow_tool(q="x")
        except ToolTimeoutError:
            return "the tool took too long"
    """

    __module__ = "keyward.tools"

    def __init__(self, tool: str, timeout: float) -> None:
        super().__init__("tool_timeout", f'tool "{tool}" did not finish within {timeout:g} s')
        self.tool = tool
        self.timeout = timeout


class ToolError(Exception):
    """What a wrapped tool's own exception becomes: ``type_name`` (the original class's name) and
    the message, both redacted; ``code`` is the original's ``code`` attribute when it had a string
    one. The original exception (its arguments, attributes, traceback and chain may all hold a
    value) is dropped, so compare ``type_name`` or ``code``, not the class.

    Example::

        try:
            create_ticket(title="x")
        except ToolError as err:
            log.warning("ticket tool failed: %s", err)  # "HTTPStatusError: … [redacted] …"
    """

    __module__ = "keyward.tools"

    def __init__(self, type_name: str, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.type_name = type_name
        self.message = message
        self.code = code

    def __repr__(self) -> str:
        return f"ToolError(type_name={self.type_name!r}, message={self.message!r})"
