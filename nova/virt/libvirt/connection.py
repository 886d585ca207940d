"""The one door to libvirt: connections, and every call through them
bounded.

``Connections`` opens libvirt for one URI, read-only (``VIR_CONNECT_RO``,
for callers that only read) or read-write, keeps the connection the next
calls use, sets it aside for a new one once a call is stuck on it, and
closes what it set aside once its calls end. Every call into libvirt is a
``bounded.Call`` started here: the caller waits at most its bound and gets
a one-line error naming the call (``not_answering``); a call that overran
finishes alone, counted against its connection, and past
``bounded.MAX_PENDING_CALLS`` of them no new one starts. libvirtd serves
only ``CLIENT_REQUESTS`` calls of one connection at once, so each stuck
call, and each probe of a stuck guest (``stuck_probes()``), counts against
what a connection has left (``free_requests``).

How it opens is the ``opener``'s (default: libvirt-python's open or
openReadOnly, through api.py, the one module that imports libvirt), so a
test hands a fake connection in through the same door. It must not read
nova.conf.
"""

import os
import subprocess
import threading
import time

from oslo_log import log as logging

from nova import exception
from nova.virt.libvirt import api
from nova.virt.libvirt import bounded
from nova.virt.libvirt import embed
from nova.virt.libvirt import stuck

LOG = logging.getLogger(__name__)

# Seconds a poll, or a call that reads, waits for libvirt unless told
# otherwise.
DEFAULT_TIMEOUT = 5.0

# Seconds opening an embedded driver may take: it probes QEMU's
# capabilities when its cache is cold, and has no daemon that could hang.
CONNECT_TIMEOUT = 30.0

# Seconds an embedded driver that just opened may take to reconnect to the
# running QEMUs before its connection is used.
RECONNECT_WAIT = 5.0

# Calls of one connection that libvirtd serves at once (libvirtd.conf's
# max_client_requests, default 5). Measured: with five calls stuck on a
# stopped QEMU, every further call on that connection waits, while another
# connection is answered at once. So each call is counted against its
# connection: a poll's parallel calls take what the stuck ones leave (one
# kept for the listing and the XML), a connection left with fewer than 2
# is set aside for a new one, and the guests of late bulk calls are read
# again on new connections where the current one has no room.
CLIENT_REQUESTS = 5

# Errors after which a connection is worth reopening once.
CONNECTION_ERRORS = frozenset((
    api.VIR_ERR_SYSTEM_ERROR, api.VIR_ERR_RPC,
    api.VIR_ERR_INVALID_CONN, api.VIR_ERR_INTERNAL_ERROR))

_event_loop_lock = threading.Lock()
_event_loop_thread = None


def _start_event_loop() -> None:
    """Register libvirt's default event loop and run it, once a process."""
    global _event_loop_thread
    with _event_loop_lock:
        if _event_loop_thread is not None:
            return
        api.register_event_loop()
        _event_loop_thread = threading.Thread(
            target=api.run_event_loop, name='libvirt-event-loop',
            daemon=True)
        _event_loop_thread.start()


def open_libvirt(uri: str, read_only: bool):
    """libvirt-python's open (VIR_CONNECT_RO where ``read_only``), its
    event loop running first (for the connection's keepalives).
    """
    _start_event_loop()
    return api.open_connection(uri, read_only)


def hint(uri: str, message: str = '', read_only: bool = False) -> str:
    """What to do when ``uri`` cannot be opened (libvirt said
    ``message``).
    """
    root = embed.embed_root_of(uri)
    if root is not None:
        if 'pid file' in message or 'driver.pid' in message:
            return (f'another process holds the embedded root {root}'
                    f'{embed.holder(root)}: stop it, or use another '
                    '[DEFAULT] state_path')
        return ('install the libvirt and QEMU packages in bindep.txt; only '
                'one process at a time may use an embedded root')
    if "parameter 'root'" in message:
        # libvirt loads the embedded driver into the process, and from
        # then on it answers every qemu:/// URI of that process.
        return ('this process has opened an embedded QEMU driver '
                '(qemu:///embed), which then takes every qemu:/// URI: '
                'use one connection URI per process')
    if not read_only and _refused(message):
        return ('this command changes guests, so it needs read-write '
                'access: run it as root or as a member of group libvirt '
                '(memstats and guest-xml only read: any user may run '
                'them)')
    if uri.startswith('qemu:///system') or uri.startswith('lxc:'):
        return ('start libvirtd (package libvirt-daemon-system) and check '
                'that this user may use its socket')
    return 'check [libvirt] connection_uri'


def _refused(message: str) -> bool:
    """Whether libvirt's message says this user may not open it so."""
    return any(words in message for words in (
        'Permission denied', 'authentication unavailable',
        'authentication failed', 'access denied', 'polkit'))


def frozen_hint(uri: str) -> str:
    """What to check when libvirt does not answer in time."""
    if embed.embed_root_of(uri) is not None:
        return ("check that no guest's QEMU process is stopped (kill -CONT "
                'it) and that the host is not overloaded')
    return ('check that libvirtd runs and is not stopped, and that no '
            "guest's QEMU process is stopped")


def wait_reconnected(conn, timeout: float = RECONNECT_WAIT) -> None:
    """Wait until an embedded driver that just opened has reconnected to
    each running QEMU: it holds each one's job meanwhile (about 20 ms),
    and a process that exits before it is done can leave libvirt to kill
    the guest (seen with virsh: "shutting down, reason=daemon").
    """
    deadline = time.monotonic() + timeout
    try:
        domains = conn.listAllDomains(
            api.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
        while domains and time.monotonic() < deadline:
            domains = [d for d in domains
                       if stuck.monitor_busy(d) is not None]
            if domains:
                time.sleep(0.01)
    except api.Error:
        pass  # the first real call reports what is wrong


def system_guest_count(timeout: float = 5.0) -> int | None:
    """Guests of the host's libvirtd (qemu:///system), asked read-only by
    ``virsh`` in a process of its own (this one may have opened an
    embedded driver, which then takes every qemu:/// URI); None when it
    cannot tell.
    """
    try:
        result = subprocess.run(
            ['virsh', '-r', '-c', 'qemu:///system', 'list', '--all',
             '--name'], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode:
        return None
    return len([line for line in result.stdout.splitlines() if line])


def alive(conn) -> bool:
    """Whether ``conn`` is still connected (a local check)."""
    try:
        return bool(conn.isAlive())
    except api.Error:
        return False


class Connections:
    """libvirt for one URI: the connection in use, those set aside, and
    every call bounded. ``timeout`` bounds each call that reads;
    ``stuck_probes()`` gives the probes of stuck guests still running
    (stuck.StuckGuests.probes), counted against their connections.
    """

    def __init__(self, uri: str, read_only: bool = False,
                 timeout: float = DEFAULT_TIMEOUT, opener=open_libvirt,
                 stuck_probes=lambda: []):
        self.uri = uri
        self.read_only = read_only
        self.timeout = timeout
        self._opener = opener
        self._stuck_probes = stuck_probes
        self._conn = None
        # Connections set aside (or opened by a poll for a while) until
        # the calls stuck on them finish.
        self._retired: list = []
        self._opening: bounded.Call | None = None
        self._lock = threading.Lock()
        # Calls that overran their caller's wait and still run in libvirt.
        self._calls = bounded.Calls(self._too_many)

    @property
    def embedded(self) -> bool:
        """Whether this is an embedded QEMU driver (no daemon)."""
        return embed.embed_root_of(self.uri) is not None

    # -- bounded calls -----------------------------------------------------

    def not_answering(self, what: str, seconds: float, why: str = '',
                      hint_text: str | None = None
                      ) -> exception.HypervisorNotAnswering:
        """libvirt did not answer ``what`` within ``seconds`` (``why``:
        what else it did not answer); what to check (``hint_text``).
        """
        return exception.HypervisorNotAnswering(
            uri=self.uri,
            reason=f'libvirt did not answer {what} within '
                   f'{bounded.seconds_text(seconds)}{why}: '
                   f'{hint_text or frozen_hint(self.uri)}.')

    def daemon_not_answering(self, seconds: float
                             ) -> exception.HypervisorNotAnswering:
        """The error of a poll that libvirt answered nothing of, not even a
        call that reaches no guest: libvirt itself is stuck, not a QEMU.
        """
        if self.embedded:
            what, hint_text = ('the embedded driver',
                               'check that the host is not overloaded')
        else:
            what, hint_text = ('libvirtd', 'check that it runs and is not '
                                           'stopped (kill -CONT it)')
        return self.not_answering(
            'getAllDomainStats()', seconds,
            f', nor a call that reaches no guest, so {what} itself is '
            'stuck', hint_text)

    def _too_many(self, count: int, age: float
                  ) -> exception.HypervisorNotAnswering:
        return exception.HypervisorNotAnswering(
            uri=self.uri,
            reason=f'libvirt has not answered {count} earlier calls, the '
                   f'oldest for {age:.0f}s, so no new one is made until it '
                   f'does: {frozen_hint(self.uri)}.')

    def start(self, fn, conn=None) -> bounded.Call:
        """Run ``fn`` (a call on ``conn``, if given) on a worker, unless
        too many calls are still stuck (bounded.Calls).
        """
        return self._calls.start(fn, conn)

    def waited(self, call: bounded.Call, timeout: float) -> bool:
        """Whether ``call`` answered within ``timeout``; if not, it is
        left to finish (or not) on its own, and counted.
        """
        return self._calls.waited(call, timeout)

    def run_bounded(self, what: str, fn, timeout: float,
                    budget: float | None = None, conn=None):
        """``fn()``, a call into libvirt (on ``conn``, if given) that may
        block on a guest's QEMU or a stuck daemon, if it returns within
        ``timeout`` seconds; else HypervisorNotAnswering naming ``what``
        and ``budget`` (the caller's whole wait) if given, and the call
        finishes alone.
        """
        call = self.start(fn, conn)
        if self.waited(call, timeout):
            return call.result()
        raise self.not_answering(what, budget or timeout)

    @property
    def pending_calls(self) -> int:
        """Calls that overran their wait and have not returned yet."""
        return len(self._calls.pending())

    # -- connections -------------------------------------------------------

    def connect(self, timeout: float | None = None,
                budget: float | None = None):
        """The connection in use, opening it if need be and waiting at most
        ``timeout`` seconds (default: this one's; an embedded driver,
        which probes QEMU when it opens and has no daemon to hang, at
        least CONNECT_TIMEOUT). Callers arriving while it opens wait for
        the same open, never start another. ``budget``: the caller's
        whole wait, named in the error.
        """
        conn = self._conn
        if conn is not None:
            return conn
        timeout = self.timeout if timeout is None else timeout
        if self.embedded:
            timeout, budget = max(timeout, CONNECT_TIMEOUT), None
        with self._lock:
            if self._conn is not None:
                return self._conn
            call = self._opening
            if call is None:
                call = self._opening = self.start(self._open_and_keep)
        if not self.waited(call, timeout):
            raise self.not_answering('open()', budget or timeout)
        return call.result()

    def _open_and_keep(self):
        try:
            conn = self.open()
            with self._lock:
                if self._conn is None:
                    self._conn = conn
                return self._conn
        finally:
            with self._lock:
                self._opening = None

    def open(self):
        """A new connection (unbounded: call it through ``start``), for
        this one's use or a poll's spare one. HypervisorUnavailable in one
        line when libvirt refuses.
        """
        root = embed.embed_root_of(self.uri)
        self._check_embed(root)
        try:
            conn = self._opener(self.uri, self.read_only)
        except api.Error as e:
            message = e.get_error_message()
            raise exception.HypervisorUnavailable(
                uri=self.uri,
                reason=f'{message}; '
                       f'{hint(self.uri, message, self.read_only)}.'
            ) from None
        if root is not None:
            wait_reconnected(conn)
        return conn

    def _check_embed(self, root: str | None) -> None:
        """Refuse, in one line, an embedded root that cannot work."""
        if self.uri.startswith(embed.EMBED_PREFIX) and root is None:
            raise exception.HypervisorUnavailable(
                uri=self.uri, reason='an embedded URI names its root '
                                     'directory: add ?root=DIR to it.')
        if root is None:
            return
        if not os.path.isabs(root):
            raise exception.HypervisorUnavailable(
                uri=self.uri,
                reason=f'the embedded root {root!r} is not an absolute '
                       'path: set [DEFAULT] state_path to one.')
        if os.geteuid() != 0:
            raise exception.HypervisorUnavailable(
                uri=self.uri,
                reason='the embedded QEMU driver runs QEMU as root: run '
                       'as root, or set [libvirt] connection_uri to a '
                       'libvirtd you may use.')
        try:
            embed.prepare_embed_root(root)
        except OSError as e:
            raise exception.HypervisorUnavailable(
                uri=self.uri,
                reason=f'cannot prepare {root}: {e.strerror}.') from None

    @property
    def current(self):
        """The connection in use, or None (none open)."""
        return self._conn

    def close(self) -> None:
        """Close the connection (and any set aside), waiting at most a
        second for each.
        """
        with self._lock:
            conns = self._retired + [self._conn]
            self._conn, self._retired = None, []
        for conn in filter(None, conns):
            self._close(conn)

    def _close(self, conn) -> None:
        try:
            self.run_bounded('close()', conn.close, 1.0)
        except (api.Error, exception.NovaException):
            pass  # a dead or frozen connection is closed enough

    def stuck_calls(self, conn) -> int:
        """Calls on ``conn`` that libvirt has not answered though their
        caller gave up (probes of stuck guests included).
        """
        calls = self._calls.pending() + self._stuck_probes()
        return sum(c.conn is conn for c in calls)

    def free_requests(self, conn=None) -> int:
        """Calls ``conn`` (default: the one in use) may still have served
        at once; the embedded driver has no such limit.
        """
        if self.embedded:
            return bounded.MAX_PENDING_CALLS
        return CLIENT_REQUESTS - self.stuck_calls(conn or self._conn)

    def retire(self, conn) -> None:
        """Close ``conn`` once no call is stuck on it (see make_room)."""
        with self._lock:
            self._retired.append(conn)

    def make_room(self, stuck_guests=()) -> None:
        """Set a daemon's connection aside for a new one once a call is
        stuck on it, and close connections set aside whose calls have all
        ended (``stuck_guests``: the names found stuck, for the log).

        Two reasons. libvirtd serves only CLIENT_REQUESTS calls of a
        connection at once, and queues the rest behind stuck ones. And
        libvirt's client, on a connection with calls stuck on stopped
        QEMUs, now and then leaves a reply libvirtd has sent undelivered
        until some other call comes (measured: an XMLDesc() libvirtd
        answered at once, for which the caller waited until the stopped
        QEMUs were resumed; another connection answered in 3 ms).
        """
        with self._lock:
            if (self._conn is not None and not self.embedded and
                    self.stuck_calls(self._conn)):
                # Name the guests found stuck; without any, the cause is
                # not known yet (a QEMU, or the daemon: a poll then asks
                # the daemon on a new connection, and says which).
                cause = (f'wait on the stopped or hung QEMU of '
                         f'{", ".join(stuck_guests)}' if stuck_guests else
                         'have not returned (a stopped QEMU, or libvirtd '
                         'itself)')
                LOG.info('%d calls to %s %s; using a new connection while '
                         'they finish.', self.stuck_calls(self._conn),
                         self.uri, cause)
                self._retired.append(self._conn)
                self._conn = None
            done = [c for c in self._retired if not self.stuck_calls(c)]
            self._retired = [c for c in self._retired if c not in done]
        for conn in done:
            self._close(conn)

    def in_use_or_fresh(self, timeout: float):
        """(connection, whether it is a new one): the one in use, unless a
        call is stuck on it (see make_room), then a new one, opened within
        ``timeout``.
        """
        conn = self._conn
        if conn is None or self.embedded or not self.stuck_calls(conn):
            return self.connect(timeout), False
        self.make_room()
        return self.connect(timeout), True
