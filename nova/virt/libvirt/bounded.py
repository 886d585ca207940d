"""Bounded calls: run a call that may block on a worker thread, wait for it
at most so long, and leave it to finish alone if it overruns.

A call into libvirt can block on a stopped QEMU or a stopped daemon, and a
call stuck inside a C library cannot be cancelled. ``Call`` runs one on a
kept worker thread (``Workers``); the caller waits at most its timeout.
Which calls overran, and the cap on them (MAX_PENDING_CALLS), are kept by
their owner (host.Host). This module knows nothing of libvirt and must
not import it, nor nova.conf.
"""

import queue
import threading
import time

# Calls libvirt has not answered that a Host keeps waiting on; past this it
# starts no more and fails at once, so stuck threads never pile up.
MAX_PENDING_CALLS = 8


class Workers:
    """Daemon threads that run libvirt calls, kept for the next ones.

    Starting a thread per call cost about 0.3 ms a poll. A call stuck in
    libvirt keeps its thread; the others come back for more work, so
    there are never more threads than calls once running at the same time
    (Host stops starting calls past MAX_PENDING_CALLS stuck ones). A thread
    idle for IDLE_SECONDS ends, so the threads a freeze needed do not stay
    once it is over. Daemon threads, so that a call that never returns
    never holds up exit.
    """

    IDLE_SECONDS = 60.0

    def __init__(self):
        self._calls = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # threads that will take a call without being made

    def run(self, call: 'Call') -> None:
        with self._lock:
            make = not self._idle
            if not make:
                self._idle -= 1
            # Under the lock: an idle thread that times out must see the
            # call it was counted for.
            self._calls.put(call)
        if make:
            threading.Thread(target=self._serve, daemon=True,
                             name='libvirt-call').start()

    def _serve(self) -> None:
        while True:
            try:
                call = self._calls.get(timeout=self.IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._idle and self._calls.empty():
                        self._idle -= 1
                        return  # a spare: end
                continue
            call.run()
            with self._lock:
                self._idle += 1
            # Idle before the caller hears of it: its next call must find
            # this thread free, not start another.
            call.done.set()


WORKERS = Workers()


class Call:
    """One libvirt call, run by a worker thread; ``conn`` is the
    connection it uses, where it counts against what libvirtd serves.
    """

    def __init__(self, fn, conn=None):
        self._fn = fn
        self.conn = conn
        self.started = time.monotonic()
        self.result = self.error = None
        self.done = threading.Event()
        WORKERS.run(self)

    def run(self) -> None:
        """Make the call; the worker then sets ``done``."""
        try:
            self.result = self._fn()
        except BaseException as e:  # handed to the waiting caller
            self.error = e
        finally:
            self._fn = None

    def wait(self, timeout: float) -> bool:
        return self.done.wait(max(0.0, timeout))

    def get(self):
        if self.error is not None:
            raise self.error
        return self.result


def left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def kept_back(deadline: float, keep: float) -> float:
    """The time left but ``keep`` seconds (at most half of it) kept for
    what follows.
    """
    remaining = left(deadline)
    return remaining - min(keep, remaining / 2)


def seconds_text(seconds: float) -> str:
    """'5s', '0.2s': a wait as an operator set it."""
    return f'{round(seconds, 1):g}s'
