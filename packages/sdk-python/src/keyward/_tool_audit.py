"""Tool-call audit records (``POST /v1/audit/events``, SPEC §6), sent off the call's path.

A call is never slowed or failed by its audit, nor is a lost record silent: records go to a
bounded queue drained in the background (worker threads for a sync requester, tasks for an
asyncio one), an outage (no answer, 5xx) is retried twice, and every record not stored reaches
``on_error`` as an :class:`AuditError`. Past the backlog a record is dropped at once, counted in
``dropped`` and reported with code ``audit_dropped``. The same bounds as the Node SDK's
``tools/audit-queue.ts`` (fewer requests in flight: each is a thread here).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, TypedDict

from ._http import is_outage
from ._types import AsyncRequester, Requester
from .errors import KeywardError

log = logging.getLogger("keyward.tools")

#: Retry delays (seconds) of a record while Keyward is down or unwell; a 4xx is not retried.
RETRY_DELAYS = (0.2, 1.0)
#: Requests in flight at once (threads of a sync queue, tasks of an asyncio one).
IN_FLIGHT = 4
ASYNC_IN_FLIGHT = 32
#: Records waiting behind them; past this a record is dropped.
BACKLOG = 10_000


class AuditEvent(TypedDict):
    """The body of ``POST /v1/audit/events``: no secret, only facts."""

    tool: str
    user: str
    outcome: str
    redactions: int


class AuditError(KeywardError):
    """A tool-call record was not stored (after retries for an outage, or dropped past the
    backlog: code ``audit_dropped``). The call itself returned long before.

    Example::

        def on_audit_error(err: AuditError) -> None:
            metrics.incr("audit_lost", tags={"tool": err.event["tool"], "code": err.code})
    """

    event: AuditEvent

    def __init__(self, event: AuditEvent, cause: KeywardError) -> None:
        super().__init__(
            cause.code,
            f'tool call of "{event["tool"]}" not audited: {cause.message}',
            status=cause.status,
            request_id=cause.request_id,
        )
        self.event = event
        self.__cause__ = cause


def log_audit_error(err: AuditError) -> None:
    """The default ``on_audit_error``: a warning on the ``keyward.tools`` logger (facts only)."""
    log.warning("tool call of %r for %s not audited: %s", err.event["tool"], err.event["user"], err.code)


def _cause(err: BaseException) -> KeywardError:
    return err if isinstance(err, KeywardError) else KeywardError("audit_failed", "the audit request failed")


class AuditQueue:
    """Records of a sync requester, delivered by up to ``in_flight`` daemon threads.

    Example::

        queue = audit_queue(kw)
        queue.flush(timeout=5)
        print(queue.dropped)
    """

    def __init__(self, requester: Requester, *, in_flight: int = IN_FLIGHT, backlog: int = BACKLOG) -> None:
        self._requester = requester
        self._in_flight = in_flight
        self._backlog_max = backlog
        self._backlog: deque[tuple[AuditEvent, Callable[[AuditError], None]]] = deque()
        self._cond = threading.Condition()
        self._workers = 0
        self._busy = 0
        self._closing = threading.Event()
        self.dropped = 0

    def send(self, event: AuditEvent, on_error: Callable[[AuditError], None]) -> None:
        with self._cond:
            if len(self._backlog) >= self._backlog_max:
                self.dropped += 1
                waiting = len(self._backlog) + self._busy
                dropped = self.dropped
            else:
                self._backlog.append((event, on_error))
                if self._workers < self._in_flight and self._busy + len(self._backlog) > self._workers:
                    self._workers += 1
                    threading.Thread(target=self._work, name="keyward-audit", daemon=True).start()
                self._cond.notify()
                return
        cause = KeywardError(
            "audit_dropped", f"{waiting} records are waiting for Keyward; {dropped} dropped so far"
        )
        _report(on_error, AuditError(event, cause))

    def _work(self) -> None:
        while True:
            with self._cond:
                if not self._backlog:
                    self._workers -= 1
                    self._cond.notify_all()
                    return
                event, on_error = self._backlog.popleft()
                self._busy += 1
            try:
                self._deliver(event)
            except Exception as err:
                _report(on_error, AuditError(event, _cause(err)))
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _deliver(self, event: AuditEvent) -> None:
        for attempt in range(len(RETRY_DELAYS) + 1):
            try:
                self._requester.request_json("POST", "/v1/audit/events", json=dict(event))
                return
            except Exception as err:
                if attempt >= len(RETRY_DELAYS) or self._closing.is_set() or not is_outage(err):
                    raise
                self._closing.wait(RETRY_DELAYS[attempt])

    def flush(self, timeout: float | None = None) -> bool:
        """Waits until every record sent so far was stored or reported; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._backlog and self._busy == 0, timeout)

    def close(self, timeout: float | None = 30.0) -> bool:
        """No more retries; waits (at most ``timeout``) for what is queued and in flight."""
        self._closing.set()
        return self.flush(timeout)


class AsyncAuditQueue:
    """Records of an asyncio requester, each a task of the running loop, ``in_flight`` at once.

    Example::

        await audit_queue(akw).aflush()
    """

    def __init__(
        self, requester: AsyncRequester, *, in_flight: int = ASYNC_IN_FLIGHT, backlog: int = BACKLOG
    ):
        self._requester = requester
        self._in_flight = in_flight
        self._limit = in_flight + backlog
        self._tasks: set[asyncio.Task[None]] = set()
        self._sem: asyncio.Semaphore | None = None
        self._closing = False
        self.dropped = 0

    def send(self, event: AuditEvent, on_error: Callable[[AuditError], None]) -> None:
        if len(self._tasks) >= self._limit:
            self.dropped += 1
            cause = KeywardError(
                "audit_dropped",
                f"{len(self._tasks)} records are waiting for Keyward; {self.dropped} dropped so far",
            )
            _report(on_error, AuditError(event, cause))
            return
        if self._sem is None:
            self._sem = asyncio.Semaphore(self._in_flight)
        task = asyncio.get_running_loop().create_task(self._deliver(event, on_error, self._sem))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(
        self, event: AuditEvent, on_error: Callable[[AuditError], None], sem: asyncio.Semaphore
    ) -> None:
        async with sem:
            for attempt in range(len(RETRY_DELAYS) + 1):
                try:
                    await self._requester.request_json("POST", "/v1/audit/events", json=dict(event))
                    return
                except Exception as err:
                    if attempt >= len(RETRY_DELAYS) or self._closing or not is_outage(err):
                        _report(on_error, AuditError(event, _cause(err)))
                        return
                    await asyncio.sleep(RETRY_DELAYS[attempt])

    async def aflush(self) -> None:
        """Waits until every record sent so far was stored or reported."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """No more retries; waits for what is in flight."""
        self._closing = True
        await self.aflush()


def _report(on_error: Callable[[AuditError], None], err: AuditError) -> None:
    try:
        on_error(err)
    except Exception:
        log.exception("on_audit_error failed")


_queues: weakref.WeakKeyDictionary[Any, AuditQueue | AsyncAuditQueue] = weakref.WeakKeyDictionary()
_queues_lock = threading.Lock()


def audit_queue(requester: Requester | AsyncRequester, *, is_async: bool) -> AuditQueue | AsyncAuditQueue:
    """The one queue of ``requester`` (a client), made at first use."""
    with _queues_lock:
        try:
            queue = _queues.get(requester)
        except TypeError:  # not weak-referenceable: a queue of its own for each wrapped tool
            queue = None
            return AsyncAuditQueue(requester) if is_async else AuditQueue(requester)  # type: ignore[arg-type]
        if queue is None:
            queue = AsyncAuditQueue(requester) if is_async else AuditQueue(requester)  # type: ignore[arg-type]
            _queues[requester] = queue
        return queue


def existing_audit_queue(requester: object) -> AuditQueue | AsyncAuditQueue | None:
    """The queue of ``requester`` if its wrapped tools made one (a client's ``close`` drains it)."""
    with _queues_lock:
        try:
            return _queues.get(requester)
        except TypeError:
            return None
