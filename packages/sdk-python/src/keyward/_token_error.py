"""The verifier's one failure type, shared by its parsing (``_compact.py``), its claim rules
(``_claims.py``) and ``verify.py``, which exports it."""

from __future__ import annotations

from typing import Literal, NoReturn

from .errors import KeywardError

TokenErrorCode = Literal["invalid_token", "token_expired", "missing_credentials"]


class InvalidTokenError(KeywardError):
    """A token was refused. ``code`` is ``invalid_token`` or ``token_expired`` (``missing_credentials``
    only from :meth:`Verifier.verify_header` without a token) — the Node SDK's
    ``TokenVerificationError`` codes. The message says why in general terms, never quoting the token.

    Example::

        try:
            claims = verifier.verify(token)
        except InvalidTokenError as err:
            log.warning("refused: %s (%s)", err.code, err)
    """

    __module__ = "keyward.verify"

    code: TokenErrorCode

    def __init__(self, code: TokenErrorCode, message: str) -> None:
        super().__init__(code, message)


def invalid(message: str) -> NoReturn:
    """Raises ``invalid_token`` with ``message`` (never a part of the token), without a cause."""
    raise InvalidTokenError("invalid_token", message) from None


def expired() -> NoReturn:
    raise InvalidTokenError("token_expired", "the access token has expired")
