"""Parsing (and classifying) fetched mail in child processes, so that a backlog uses a second core: while the
reader's event loop acts on one batch (matching, the database), a child parses the next ones.

Parsing (the stdlib message tree, headers, bodies, quoted history, bounce reports) and classifying are most
of the reader's CPU per message; acting on a batch is the rest. In one process they take turns on one core;
in two they overlap. A chunk smaller than `inbound_parse_pool_from` messages (a reply or two: the usual read)
is parsed in the worker itself, where it costs less than the trip to a child and back. The children start
with the first large chunk, in the background (chunks are parsed in the worker until they are up), and live
as long as the worker; when a child dies its chunk is parsed in the worker and the children are restarted.

A child also classifies every message that is not a delivery report, with the shipped classifier, when no
classifier endpoint is configured (`classifier_url`). The reader takes that label for the replies it matches
in a workspace without a model of its own, and classifies the others itself (a workspace's trained model,
the endpoint). Labelling messages that turn out to match nothing is work done in vain, on the other core.

What comes back from a child is the parsed message without its stdlib message tree (`InboundMessage.raw`):
nothing after bounce detection reads it, and pickling it would cost more than parsing saves.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from multiprocessing.connection import wait as wait_for_handles

import structlog

from imail.mail.bounces import Bounce, report_of
from imail.mail.parsing import InboundMessage, parse_message
from imail.replies.verdict import Verdict, assess_locally

log = structlog.get_logger("imail.inbound")

# A message parsed, what it reports if it is a delivery report, and (from a child asked to classify) what the
# shipped classifier makes of it.
Parsed = tuple[InboundMessage, Bounce, Verdict | None]


def parse_fetched(raw: bytes) -> tuple[InboundMessage, Bounce]:
    """One fetched message, parsed, and what it reports if it is a delivery report."""
    message = parse_message(raw)
    return message, report_of(message)


def _parse_in_child(raws: list[bytes], classify: bool) -> list[Parsed]:
    parsed: list[Parsed] = []
    for raw in raws:
        message, bounce = parse_fetched(raw)
        message = replace(message, raw=None)
        verdict = (
            assess_locally(message, bounce) if classify and message.is_mail and not bounce.is_bounce else None
        )
        parsed.append((message, bounce, verdict))
    return parsed


def _child_started() -> None:
    """A child leaves Ctrl-C to the worker (which stops it), and exits when the worker is gone, even killed
    with SIGKILL: it would otherwise wait forever on a queue it holds open itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def exit_with_parent() -> None:
        wait_for_handles([parent.sentinel])
        os._exit(0)

    threading.Thread(target=exit_with_parent, name="exit-with-worker", daemon=True).start()


def _ready() -> int:
    return os.getpid()


class ParserPool:
    """The worker's parsing children (`inbound_parse_processes` of them; none: every chunk parsed here)."""

    def __init__(self, processes: int, pooled_from: int):
        self.processes = processes
        self.pooled_from = pooled_from
        self._executor: ProcessPoolExecutor | None = None
        self._started: Future | None = None

    async def parse(self, raws: list[bytes], classify: bool) -> list[Parsed]:
        """The chunk's messages parsed, in order: in a child when the chunk is large and the children are up,
        else here, yielding to the event loop between messages. With `classify`, a child also labels each
        message that is not a delivery report with the shipped classifier; the reader keeps those labels for
        the messages it matches to our emails."""
        if len(raws) >= self.pooled_from and self._children_ready():
            assert self._executor is not None
            try:
                return await asyncio.get_running_loop().run_in_executor(
                    self._executor, _parse_in_child, raws, classify
                )
            except BrokenProcessPool:
                log.warning("a parsing child died: its chunk is parsed in the worker, the children restarted")
                self._discard()
        parsed: list[Parsed] = []
        for raw in raws:
            parsed.append((*parse_fetched(raw), None))
            await asyncio.sleep(0)
        return parsed

    async def start(self) -> None:
        """Start the children now and wait until they are up (a worker otherwise starts them with its first
        large chunk)."""
        if self.processes > 0:
            self._children_ready()
            assert self._started is not None
            await asyncio.wrap_future(self._started)

    def _children_ready(self) -> bool:
        if self.processes <= 0:
            return False
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self.processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_child_started,
            )
            self._started = self._executor.submit(_ready)
            return False
        assert self._started is not None
        if not self._started.done():
            return False
        if self._started.exception() is not None:  # the children could not start: parse here from now on
            log.warning("parsing children failed to start", error=repr(self._started.exception()))
            self._discard()
            self.processes = 0
            return False
        return True

    @property
    def ready_child(self) -> int | None:
        """The process id of the child that answered first, once the children are up."""
        started = self._started
        if started is None or not started.done() or started.exception() is not None:
            return None
        return started.result()

    def _discard(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = None
        self._started = None

    def close(self) -> None:
        self._discard()
