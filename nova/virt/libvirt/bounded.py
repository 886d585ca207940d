"""Bounded calls: run a call that may block on a worker thread, wait for it
at most so long, and leave it to finish alone if it overruns.

A call into libvirt can block on a stopped QEMU or a stopped daemon, and a
call stuck inside a C library cannot be cancelled. ``Call`` (a
concurrent.futures.Future) runs one on a kept worker thread
(``Workers``); the caller waits at most its timeout. ``Calls`` counts the
calls that overran, each against its connection, and caps them
(MAX_PENDING_CALLS). This module knows nothing of libvirt and must not
import it, nor nova.conf.
"""
import concurrent.futures
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
            call.publish()


WORKERS = Workers()


class Call(concurrent.futures.Future):
    """One call, run by a worker thread: a Future (done(), result()),
    with when it ``started`` and the connection (``conn``) it uses, where
    it counts against what libvirtd serves of it. Start it through a
    ``Calls``, which keeps the cap on stuck calls.
    """

    def __init__(self, fn, conn=None):
        super().__init__()
        self._fn = fn
        self._outcome = None
        self.conn = conn
        self.started = time.monotonic()
        self.set_running_or_notify_cancel()
        WORKERS.run(self)

    def run(self) -> None:
        """Make the call; the worker then publishes its outcome."""
        try:
            self._outcome = (True, self._fn())
        except BaseException as e:  # handed to the waiting caller
            self._outcome = (False, e)
        finally:
            self._fn = None

    def publish(self) -> None:
        ok, value = self._outcome
        self._outcome = None
        if ok:
            self.set_result(value)
        else:
            self.set_exception(value)

    def wait(self, timeout: float) -> bool:
        """Whether it is done within ``timeout`` seconds."""
        try:
            self.exception(max(0.0, timeout))
        except concurrent.futures.TimeoutError:
            return False
        return True


class Calls:
    """The calls of one owner (a Host): started on the shared workers, at
    most MAX_PENDING_CALLS of them left running past their caller's wait
    (then no new one starts: ``too_many(count, age)`` says why), each
    counted against its connection while it runs. Every call of the owner
    goes through here, the probes of stuck guests included.
    """

    def __init__(self, too_many):
        self._too_many = too_many
        self._pending: list[Call] = []
        self._lock = threading.Lock()

    def start(self, fn, conn=None) -> Call:
        """Run ``fn`` (a call on ``conn``, if given) on a worker, unless
        too many calls are still stuck.
        """
        with self._lock:
            self._pending = [c for c in self._pending if not c.done()]
            if len(self._pending) >= MAX_PENDING_CALLS:
                age = time.monotonic() - min(c.started
                                             for c in self._pending)
                raise self._too_many(len(self._pending), age)
            return Call(fn, conn)

    def waited(self, call: Call, timeout: float) -> bool:
        """Whether ``call`` answered within ``timeout``; if not, it is
        left to finish (or not) on its own, and counted.
        """
        if call.wait(timeout):
            return True
        with self._lock:
            if call not in self._pending:
                self._pending.append(call)
        return False

    def pending(self) -> list[Call]:
        """The calls that overran their wait and are still running."""
        with self._lock:
            return [c for c in self._pending if not c.done()]


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
