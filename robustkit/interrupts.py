"""A clean stop on SIGINT (Ctrl-C) and SIGTERM (a scheduler's stop).

Under :func:`stop_on_signals` the first signal raises :class:`Interrupted` where the work is,
dropping the batch in flight, except inside :func:`uninterrupted` (a file being written, a batch
and its checksum being saved): there it is held until the block is done. A second signal ends the
process at once through the callback given; since every write is atomic (:mod:`robustkit.files`)
even that leaves no half-written file, only a temporary one that the next run removes.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """The first SIGINT or SIGTERM (a BaseException, like KeyboardInterrupt: ``except Exception``
    in the work it stops does not swallow it)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(self.name)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum


@dataclass
class _State:
    received: int | None = None  # the first signal
    raised: bool = False  # Interrupted was raised for it
    deferring: int = 0  # nesting depth of uninterrupted blocks
    on_second: Callable[[int], object] | None = None


_state = _State()


@contextmanager
def stop_on_signals(on_second: Callable[[int], object]) -> Iterator[None]:
    """While the block runs, turn the first SIGINT or SIGTERM into :class:`Interrupted` and hand a
    second one to ``on_second(signum)``, which is to end the process (``os._exit``). After a
    signal the handlers stay in place, so that a second one during the shutdown still stops at
    once; without one, the previous handlers come back. Off the main thread, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    global _state
    _state = _State(on_second=on_second)
    previous = {signum: signal.signal(signum, _handle) for signum in SIGNALS}
    try:
        yield
    finally:
        if _state.received is None:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Hold a first signal until the block is done (a write completes), then stop."""
    _state.deferring += 1
    try:
        yield
    finally:
        _state.deferring -= 1
    if _state.deferring == 0 and _state.received is not None and not _state.raised:
        _state.raised = True
        raise Interrupted(_state.received)


def _handle(signum: int, frame: FrameType | None) -> None:
    if _state.received is not None:
        if _state.on_second is not None:
            _state.on_second(signum)
        return
    _state.received = signum
    if _state.deferring == 0:
        _state.raised = True
        raise Interrupted(signum)
