"""Runs in a worker's background: one task each, in a task group the `App` owns for its life.

The worker running a run is the only one writing its record: progress as tests and turns end,
then its final state. It renews the run's heartbeat every `HEARTBEAT_SECONDS` and looks for a
cancel flag then and between turns and tests, so a `cancel_run` that reached another worker
stops it within a beat. A run whose heartbeat lapsed reads "lost" (its worker was killed or
crashed), never "running" forever; runs still going when the worker shuts down in order are
stopped and read "stopped".

A caller runs at most `max_runs` (`VF_MCP_MAX_RUNS`) at once on one worker: counted here, not
across workers, so a caller reaching N workers may have N times as many going (the store keeps no
count per caller that every worker could update at once). Once the worker is stopping (its
SIGTERM drain began: `stopping` is set by the server layer) it starts no new run, since every run
still going is stopped when the drain ends.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal, Protocol

import anyio
from anyio.abc import TaskGroup

from vf_mcp.config import DEFAULT_MAX_RUNS, ENV_MAX_RUNS
from vf_mcp.domain.run import RunRecord, now
from vf_mcp.domain.transcript import RunResult
from vf_mcp.errors import InvalidInputError, StoreError, VfMcpError
from vf_mcp.redaction import redact
from vf_mcp.runs.models import RunStarted, new_run_id, run_key
from vf_mcp.runs.store import RunStore, StoredRun

_log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 1.0
"""How often the running worker renews a run's heartbeat and looks for a cancel from elsewhere."""
HEARTBEAT_TTL_SECONDS = 3.0
"""A heartbeat not renewed for this long (three beats missed) means its worker is gone."""
_FINAL_WRITE_SECONDS = 5.0  # the most a run waits to write its final state (a stopping worker)
# A store blip must not throw a finished run's results away: the final write is tried again,
# sooner first, within `_FINAL_WRITE_SECONDS`.
_FINAL_RETRY_FIRST, _FINAL_RETRY_MOST = 0.1, 1.0
_ERROR_TEXT_MAX = 300  # characters of an unexpected error's own text a run's detail quotes
_RUN_ID = re.compile(r"^run-[0-9a-f]{16}$")
WORKER = f"{socket.gethostname()}:{os.getpid()}"
Stop = Literal["cancelled", "stopped"]


class Progress(Protocol):
    """One step of a run, as a run's record counts it (`vf_mcp.evaluation`'s progress events)."""

    @property
    def kind(self) -> str: ...

    @property
    def suite(self) -> str: ...

    @property
    def test(self) -> str | None: ...

    @property
    def trial(self) -> int | None: ...

    @property
    def outcome(self) -> str | None: ...


class Job(Protocol):
    """What a background run runs: its size before it starts, then the run itself. The front end
    that starts it builds it (`vf_mcp.evaluation.api.SuiteJob`), so runs know nothing of suites."""

    @property
    def tests(self) -> int:
        """The tests it runs, each trial counted."""
        ...

    @property
    def turns(self) -> int:
        """The turns its tests script, at most."""
        ...

    async def run(
        self, on_progress: Callable[[Progress], Awaitable[None]], *, namespace: str | None
    ) -> RunResult:
        """Run it in the caller's `namespace`, telling `on_progress` of each step."""
        ...

    def partial(self, stopped: str) -> RunResult:
        """What it finished before it was stopped midway, `stopped` saying why the rest is not."""
        ...


def not_found(run_id: str) -> InvalidInputError:
    # The same words for a run that never was, expired, or belongs to another caller.
    return InvalidInputError(
        f"No run {run_id!r}: this server holds no run with that id for you (runs are kept as "
        "long as conversations, VF_MCP_STORE_TTL); start one with start_run"
    )


STOPPING = (
    "This worker is stopping, so it starts no new run (runs still going end with it); call "
    "start_run again and another worker will take it"
)


@dataclass
class _Active:
    """A run this worker is running now."""

    key: str
    record: RunRecord
    namespace: str | None
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    done: anyio.Event = field(default_factory=anyio.Event)
    saving: anyio.Lock = field(default_factory=anyio.Lock)
    reason: Stop | None = None

    def stop(self, reason: Stop) -> None:
        if self.reason is None:
            self.reason = reason
        self.scope.cancel()


class RunManager:
    """Starts runs in the background and answers for runs by id, wherever they run."""

    def __init__(
        self,
        store: RunStore,
        group: TaskGroup,
        *,
        max_runs: int = DEFAULT_MAX_RUNS,
        stopping: threading.Event | None = None,
    ) -> None:
        self._store = store
        self._group = group
        self._max_runs = max_runs
        # Set from the server layer's signal handler (another thread): read, never awaited.
        self._stopping = stopping or threading.Event()
        self._active: dict[str, _Active] = {}
        self._closing = False

    async def start(self, job: Job, *, agent: str, namespace: str | None) -> RunStarted:
        if self._closing or self._stopping.is_set():
            raise InvalidInputError(STOPPING)
        self._refuse_beyond_limit(namespace)
        run_id = new_run_id()
        record = RunRecord(
            run_id=run_id, agent=agent, state="running", worker=WORKER, tests_total=job.tests
        )
        active = _Active(run_key(namespace, run_id), record, namespace)
        # Counted before the first await, so two starts at once cannot both pass the limit.
        self._active[active.key] = active
        try:
            # Saved and beating before the id is handed out: the first get_run finds it running.
            await self._store.save(active.key, record)
            await self._store.beat(active.key, HEARTBEAT_TTL_SECONDS)
        except BaseException:
            self._active.pop(active.key, None)
            raise
        self._group.start_soon(self._drive, active, job)
        return RunStarted(
            run_id=run_id, agent=agent, tests_total=job.tests, turns_planned=job.turns
        )

    async def get(self, run_id: str, namespace: str | None) -> RunRecord:
        return _as_read(await self._load(run_id, namespace))

    async def cancel(self, run_id: str, namespace: str | None) -> RunRecord:
        """Ask the run to stop; this worker's own runs are stopped (and read) at once."""
        stored = await self._load(run_id, namespace)
        read = _as_read(stored)
        if read.state != "running":
            return read  # over already: nothing to cancel
        key = run_key(namespace, run_id)
        await self._store.request_cancel(key)
        active = self._active.get(key)
        if active is None:  # running elsewhere: its worker sees the flag within a beat
            return read.model_copy(update={"cancel_requested": True})
        active.stop("cancelled")
        with anyio.move_on_after(_FINAL_WRITE_SECONDS):
            await active.done.wait()
        return await self.get(run_id, namespace)

    def _refuse_beyond_limit(self, namespace: str | None) -> None:
        going = [a.record.run_id for a in self._active.values() if a.namespace == namespace]
        if len(going) < self._max_runs:
            return
        raise InvalidInputError(
            f"You have {len(going)} run(s) going on this worker ({', '.join(going)}), the most "
            f"it runs at once for one caller ({ENV_MAX_RUNS}={self._max_runs}): wait for one to "
            "finish (get_run reads it) or stop one with cancel_run, then call start_run again"
        )

    def close(self) -> None:
        """Stop every run still going (the worker shuts down); each records it was stopped."""
        self._closing = True
        for active in list(self._active.values()):
            active.stop("stopped")

    async def _load(self, run_id: str, namespace: str | None) -> StoredRun:
        stored = None
        if _RUN_ID.match(run_id):
            stored = await self._store.load(run_key(namespace, run_id))
        if stored is None:
            raise not_found(run_id)
        return stored

    async def _drive(self, active: _Active, job: Job) -> None:
        result: RunResult | None = None
        error: str | None = None

        async def on_progress(event: Progress) -> None:
            await self._progress(active, event)

        try:
            with active.scope:
                async with anyio.create_task_group() as watcher:
                    watcher.start_soon(self._watch, active)
                    result = await job.run(on_progress, namespace=active.namespace)
                    watcher.cancel_scope.cancel()
        except Exception as exc:  # the run itself broke; a test's own failure is in its result
            error = _describe(exc)
            if isinstance(_first(exc), VfMcpError):
                _log.warning("run %s failed: %s", active.record.run_id, error)
            else:  # a bug: the traceback is for the operator (masked and on one line, as all logs)
                _log.error("run %s broke inside vf-mcp", active.record.run_id, exc_info=exc)
        finally:
            with anyio.CancelScope(shield=True):
                with anyio.move_on_after(_FINAL_WRITE_SECONDS) as deadline:
                    await self._finish(active, result, error, job)
                if deadline.cancelled_caught:
                    _log.error(
                        "run %s: its final state (%s) could not be saved within %g s; it will "
                        "read lost",
                        active.record.run_id,
                        active.record.state,
                        _FINAL_WRITE_SECONDS,
                    )
            self._active.pop(active.key, None)
            active.done.set()

    async def _watch(self, active: _Active) -> None:
        while True:
            try:
                await self._store.beat(active.key, HEARTBEAT_TTL_SECONDS)
                if await self._store.cancel_requested(active.key):
                    active.stop("cancelled")
            except StoreError as error:  # a store blip must not end the run; it may read lost
                _log.warning("run %s: %s", active.record.run_id, error.message)
            await anyio.sleep(HEARTBEAT_SECONDS)

    async def _progress(self, active: _Active, event: Progress) -> None:
        record = active.record
        if event.kind == "turn_finished":
            record.turns_sent += 1
        elif event.kind == "test_finished":
            record.tests_done += 1
            if event.outcome in ("failed", "error"):
                # The transcript's key form (`id#2`): the same names the results use.
                trial = f"#{event.trial}" if event.trial is not None else ""
                record.failing.append(f"{event.suite} / {event.test}{trial}")
        else:
            return
        record.updated_at = now()
        await self._save(active)
        # Between turns and tests: a cancel from another worker stops the run here.
        try:
            if await self._store.cancel_requested(active.key):
                active.stop("cancelled")
        except StoreError as error:
            _log.warning("run %s: %s", record.run_id, error.message)

    async def _finish(
        self, active: _Active, result: RunResult | None, error: str | None, job: Job
    ) -> None:
        record = active.record
        if result is not None:
            record.state, record.result = "finished", result
            record.tests_done, record.turns_sent = len(result.transcripts), result.turns_sent
            record.failing = [
                f"{t.suite} / {t.key}"
                for t in result.transcripts
                if t.outcome in ("failed", "error")
            ]
        elif error is not None:
            record.state, record.detail = "error", error
        else:
            if active.reason == "stopped":
                record.state, record.detail = "stopped", "its worker shut down while it ran"
            else:
                record.state, record.detail = "cancelled", "cancel_run asked it to stop"
            # The tests it finished stay readable: a cancel must not throw their results away.
            record.result = job.partial(f"the run was {record.state}: {record.detail}")
        record.updated_at = now()
        await self._save_final(active)

    async def _save(self, active: _Active) -> None:
        # One write at a time, so an older snapshot never lands after a newer one.
        async with active.saving:
            try:
                await self._store.save(active.key, active.record)
            except StoreError as error:  # progress is best effort: the next write carries it
                _log.warning("run %s: %s", active.record.run_id, error.message)

    async def _save_final(self, active: _Active) -> None:
        """Write the final state, again and again while the store fails (the caller bounds it):
        a run not saved reads lost, and a finished run's results would be gone."""
        delay = _FINAL_RETRY_FIRST
        while True:
            try:
                async with active.saving:
                    await self._store.save(active.key, active.record)
                return
            except StoreError as error:
                _log.warning(
                    "run %s: its final state is not saved yet (%s); trying again in %g s",
                    active.record.run_id,
                    error.message,
                    delay,
                )
            except Exception:  # a bug in the store heals by no retry; the worker's other runs go on
                _log.exception("run %s: its final state could not be saved", active.record.run_id)
                return
            await anyio.sleep(delay)
            delay = min(delay * 2, _FINAL_RETRY_MOST)


def _as_read(stored: StoredRun) -> RunRecord:
    record = stored.record.model_copy(update={"cancel_requested": stored.cancel_requested})
    if record.state == "running" and not stored.alive:
        record.state = "lost"
        record.detail = (
            f"its worker {record.worker} stopped renewing the run's heartbeat: it was killed "
            "or crashed"
        )
    return record


def _first(error: BaseException) -> BaseException:
    # The run's task groups wrap what broke it; the first is the cause.
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def _describe(error: BaseException) -> str:
    """The run's `detail`: one line, no key, what happened and what next."""
    error = _first(error)
    if isinstance(error, VfMcpError):
        return error.message  # already one line, masked, and saying what next
    # Its text came from anywhere (it may quote a request, a key, a multi-line body): masked
    # whole, before it is cut, so no cut leaves a key's tail unmasked.
    text = redact(" ".join(f"{type(error).__name__}: {error}".split()))
    if len(text) > _ERROR_TEXT_MAX:
        text = text[: _ERROR_TEXT_MAX - 1] + "…"
    return (
        f"it broke inside vf-mcp ({text}); start it again with start_run, and report it if it "
        "repeats (the server's log holds the traceback)"
    )


@asynccontextmanager
async def open_runs(
    store: RunStore, *, max_runs: int = DEFAULT_MAX_RUNS, stopping: threading.Event | None = None
) -> AsyncIterator[RunManager]:
    """The runs of one `App`: the task group lives as long as the app; leaving it stops every
    run still going and waits (briefly) for each to record so."""
    async with anyio.create_task_group() as group:
        manager = RunManager(store, group, max_runs=max_runs, stopping=stopping)
        try:
            yield manager
        finally:
            manager.close()
