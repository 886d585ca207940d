"""The hypervisor behind one door: a libvirt connection and its event loop.

``Host`` opens one connection (lazily), runs libvirt's default event loop in
a daemon thread, prepares an embedded QEMU driver's root, and looks guests
up. This module and guest.py are the only importers of libvirt-python; no
other module may import it. It must not read nova.conf: it gets a URI.

Every call into libvirt is bounded here, at the door: opening, listing,
lookups, defining, starting, statistics. A guest whose QEMU does not answer
its monitor (stopped, stuck in a migration) blocks libvirt's calls on it, a
stopped libvirtd blocks them all, and a call stuck inside libvirt cannot be
cancelled. So each call runs on a worker thread, the caller waits at most
its timeout and gets a one-line error naming the call, and a call that
overran is left to finish on its own, counted, and never repeated past a
small limit (see ``Host.get_memory_stats``). Worker threads are kept for
the next calls (``_Workers``).
"""

import functools
import os
import queue
import threading
import time
import urllib.parse

import libvirt
from oslo_log import log as logging

from nova import exception
from nova.virt.libvirt import config as vconfig
from nova.virt.libvirt import guest as libvirt_guest

LOG = logging.getLogger(__name__)

EMBED_PREFIX = 'qemu:///embed'

# The embedded driver's qemu.conf. stdio_handler: no virtlogd here. user and
# group root: on hosts where /dev/kvm exists but QEMU's default user cannot
# open it, libvirt finds KVM "enabled when probing but not available now"
# and re-probes QEMU on every call (a define took ~40 s); as root it can
# open /dev/kvm and the capabilities cache holds. remember_owner 0: the
# files are root's already, so no xattr bookkeeping (and no warnings).
# cgroup_controllers empty: no cgroup of the host's is made for an
# embedded QEMU. On cgroup v1 hosts libvirt logged two "cgroup.threads: No
# such file" errors per running guest each time a command opened the
# driver; now one, "At least one cgroup controller is required", which no
# setting silences.
EMBED_QEMU_CONF = """\
# Written by nova-libvirt for its embedded QEMU driver; rewritten on use.
stdio_handler = "file"
user = "root"
group = "root"
remember_owner = 0
cgroup_controllers = [ ]
"""

# Seconds a poll, or a call that reads, waits for libvirt unless told
# otherwise.
DEFAULT_POLL_TIMEOUT = 5.0
# Seconds opening an embedded driver may take: it probes QEMU's
# capabilities when its cache is cold, and has no daemon that could hang.
CONNECT_TIMEOUT = 30.0
# Seconds a call that changes a domain's state (define, start, stop) may
# take: QEMU starts within it, and libvirt's own job wait is 30 s.
LIFECYCLE_TIMEOUT = 30.0
# A QEMU monitor busy for less than this many seconds is doing one of
# libvirt's short jobs (reconnecting to each QEMU when libvirt opens or
# restarts, about 20 ms; another client's query, a few ms), not hung: its
# guest is read again. Longer, it is stuck: a poll's own late bulk call
# has waited on it at least FIRST_WAIT.
BRIEF_BUSY = 0.3
# Pauses before each such re-read (seconds); measured, libvirt's reconnect
# job holds a domain about 20 ms.
BRIEF_RETRIES = (0.02, 0.05, 0.1, 0.2, 0.4)
# Seconds an embedded driver that just opened may take to reconnect to the
# running QEMUs before its connection is used.
RECONNECT_WAIT = 5.0
# The automatic choice of parallel chunks (auto_workers).
AUTO_MIN_GUESTS = 6
AUTO_GUESTS_PER_WORKER = 2
AUTO_MAX_WORKERS = 4
# Seconds a poll waits for libvirt to say how long newly skipped guests'
# monitors have been busy; past it they count as busy for this poll.
CONTROL_WAIT = 1.0
# Seconds a poll waits for its first bulk calls. A healthy poll takes ~20
# ms; a call still running after this is stuck on a stopped or hung QEMU
# (or the host is loaded), and the guests it was to read are read again,
# one per call (SINGLE_WAIT).
FIRST_WAIT = 0.5
# Seconds a poll waits for the calls that read again, one guest each,
# what a late bulk call was to read. Each skips the guest a late call is
# stuck on (NOWAIT) and answers at once, but for another stopped QEMU,
# which its own call finds. So the poll that first meets any number of
# stopped QEMUs answers within FIRST_WAIT + SINGLE_WAIT and a little more.
SINGLE_WAIT = 0.6
# Calls a poll may make to read the guests of late bulk calls again;
# past it the guests are grouped (a group stuck on a second stopped QEMU
# is unanswered for that poll only).
MAX_SINGLES = 16
# Seconds a poll keeps to ask libvirtd whether it answers at all, when
# nothing answered: on its connection, or on a new one where calls stuck
# on stopped QEMUs take all libvirtd serves of it (a new connection takes
# longer to open on a loaded host: 0.5 s once judged a healthy libvirtd
# dead, libvirt_up 0, with five QEMUs stopped).
ALIVE_WAIT = 0.5
ALIVE_OPEN_WAIT = 2.0
# Seconds a poll waits for the probe of a guest known to be stuck.
PROBE_WAIT = 0.25
# Calls libvirt has not answered that a Host keeps waiting on; past this it
# starts no more and fails at once, so stuck threads never pile up.
MAX_PENDING_CALLS = 8
# Calls of one connection that libvirtd serves at once (libvirtd.conf's
# max_client_requests, default 5). Measured: with five calls stuck on a
# stopped QEMU, every further call on that connection waits, while another
# connection is answered at once. So each call is counted against its
# connection: a poll's parallel calls take what the stuck ones leave (one
# kept for the listing and the XML), a connection left with fewer than 2
# is set aside for a new one, and the guests of late bulk calls are read
# again on new connections where the current one has no room.
CLIENT_REQUESTS = 5

_event_loop_lock = threading.Lock()
_event_loop_thread = None


def _ignore_error(ctx, error) -> None:
    """libvirt prints every error to stderr; we raise ours instead."""


def _start_event_loop() -> None:
    """Register libvirt's default event loop and run it, once a process."""
    global _event_loop_thread
    with _event_loop_lock:
        if _event_loop_thread is not None:
            return
        libvirt.registerErrorHandler(_ignore_error, None)
        libvirt.virEventRegisterDefaultImpl()

        def run():
            while True:
                libvirt.virEventRunDefaultImpl()

        _event_loop_thread = threading.Thread(
            target=run, name='libvirt-event-loop', daemon=True)
        _event_loop_thread.start()


def embed_root_of(uri: str) -> str | None:
    """The root directory of an embedded QEMU URI, else None."""
    if not uri.startswith(EMBED_PREFIX):
        return None
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(uri).query)
    roots = query.get('root')
    return roots[0] if roots else None


def embed_uri(root: str) -> str:
    return f'{EMBED_PREFIX}?root={root}'


def prepare_embed_root(root: str) -> None:
    """Create the embedded driver's root and its etc/qemu.conf."""
    etc = os.path.join(root, 'etc')
    os.makedirs(etc, exist_ok=True)
    path = os.path.join(etc, 'qemu.conf')
    current = None
    if os.path.exists(path):
        with open(path) as f:
            current = f.read()
    if current != EMBED_QEMU_CONF:
        with open(path + '.tmp', 'w') as f:
            f.write(EMBED_QEMU_CONF)
        os.replace(path + '.tmp', path)


# libvirt domain states in which QEMU runs.
_ACTIVE_STATES = frozenset((
    libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_BLOCKED,
    libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_SHUTDOWN,
    libvirt.VIR_DOMAIN_PMSUSPENDED))
_SUSPENDED = {libvirt.VIR_DOMAIN_PAUSED: 'paused',
              libvirt.VIR_DOMAIN_PMSUSPENDED: 'pmsuspended'}
# Errors after which a connection is worth reopening once.
_CONNECTION_ERRORS = frozenset((
    libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_ERR_RPC,
    libvirt.VIR_ERR_INVALID_CONN, libvirt.VIR_ERR_INTERNAL_ERROR))


class StatsRecord:
    """One domain's balloon figures, named as virDomainMemoryStats names
    them (``actual``, ``rss``, ``last_update`` ...), in KiB or seconds.

    ``uuid`` is read from the domain only when first asked for (a local
    call, but one per domain per poll adds up at a thousand guests).
    """

    __slots__ = ('_guest', '_domain', 'name', '_uuid', 'active', 'stats',
                 'error', 'monitor_busy', 'domain_id', 'state')

    def __init__(self, guest: libvirt_guest.Guest | None, name: str,
                 uuid: str | None, active: bool, stats: dict,
                 error: str | None = None,
                 monitor_busy: float | None = None, domain_id: int = -1,
                 domain=None, state: int | None = None):
        # Without a guest, the virDomain is wrapped when first asked for.
        self._guest, self._domain = guest, domain
        self.name, self._uuid = name, uuid
        self.active, self.stats, self.error = active, stats, error
        #: Seconds the guest's QEMU monitor had been busy when libvirt
        #: skipped its figures; None when libvirt did read them.
        self.monitor_busy = monitor_busy
        #: The running domain's id (new on every start), -1 when off.
        self.domain_id = domain_id
        #: libvirt's virDomainState, where known.
        self.state = state

    @property
    def suspended(self) -> str | None:
        """'paused' (vCPUs stopped: virsh suspend, nova pause),
        'pmsuspended' (the guest put itself to sleep), else None. QEMU's
        statistics timer does not run in either."""
        return _SUSPENDED.get(self.state)

    @property
    def guest(self) -> libvirt_guest.Guest | None:
        if self._guest is None and self._domain is not None:
            self._guest = libvirt_guest.Guest(self._domain)
        return self._guest

    @property
    def uuid(self) -> str | None:
        if self._uuid is None and self.guest is not None:
            self._uuid = self.guest.uuid
        return self._uuid

    def __repr__(self):
        return (f'<StatsRecord {self.name} active={self.active} '
                f'error={self.error!r}>')


def balloon_stats_to_memory_stats(record: dict) -> dict:
    """``balloon.*`` keys of the bulk call, renamed as memoryStats() names.

    The bulk call says ``balloon.current`` and ``balloon.last-update``
    where virDomainMemoryStats says ``actual`` and ``last_update``; it adds
    ``balloon.maximum`` (the domain's maximum memory), kept as ``maximum``.
    """
    stats = {}
    for key, value in record.items():
        name = _BALLOON_NAMES.get(key)
        if name is None:
            if not key.startswith('balloon.'):
                continue
            name = _BALLOON_NAMES[key] = key[8:].replace('-', '_')
        stats[name] = value
    return stats


# balloon.* key of the bulk call -> memoryStats() name (filled as met)
_BALLOON_NAMES = {'balloon.current': 'actual',
                  'balloon.last-update': 'last_update'}


def _holder(root: str) -> str:
    """' (pid N: its command line)' of the process holding an embedded
    root, from the driver's pid file; '' when it cannot be told."""
    try:
        with open(os.path.join(root, 'run', 'qemu', 'driver.pid')) as f:
            pid = int(f.read().strip())
        with open(f'/proc/{pid}/cmdline', 'rb') as f:
            argv = f.read().split(b'\0')
    except (OSError, ValueError):
        return ''
    command = ' '.join(os.fsdecode(a) for a in argv if a)
    if len(command) > 160:  # cut at a word
        command = command[:160].rsplit(' ', 1)[0] + ' ...'
    return f' (pid {pid}: {command})'


def _hint(uri: str, message: str = '') -> str:
    root = embed_root_of(uri)
    if root is not None:
        if 'pid file' in message or 'driver.pid' in message:
            return (f'another process holds the embedded root {root}'
                    f'{_holder(root)}: stop it, or use another [DEFAULT] '
                    'state_path')
        return ('install the libvirt and QEMU packages in bindep.txt; only '
                'one process at a time may use an embedded root')
    if "parameter 'root'" in message:
        # libvirt loads the embedded driver into the process, and from
        # then on it answers every qemu:/// URI of that process.
        return ('this process has opened an embedded QEMU driver '
                '(qemu:///embed), which then takes every qemu:/// URI: '
                'use one connection URI per process')
    if uri.startswith('qemu:///system') or uri.startswith('lxc:'):
        return ('start libvirtd (package libvirt-daemon-system) and check '
                'that this user may use its socket')
    return 'check [libvirt] connection_uri'


def _frozen_hint(uri: str) -> str:
    """What to check when libvirt does not answer in time."""
    if embed_root_of(uri) is not None:
        return ("check that no guest's QEMU process is stopped (kill -CONT "
                'it) and that the host is not overloaded')
    return ('check that libvirtd runs and is not stopped, and that no '
            "guest's QEMU process is stopped")


class _Workers:
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

    def run(self, call: '_Call') -> None:
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


_WORKERS = _Workers()


class _Call:
    """One libvirt call, run by a worker thread; ``conn`` is the
    connection it uses, where it counts against what libvirtd serves."""

    def __init__(self, fn, conn=None):
        self._fn = fn
        self.conn = conn
        self.started = time.monotonic()
        self.result = self.error = None
        self.done = threading.Event()
        _WORKERS.run(self)

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


class _Stuck:
    """A guest whose QEMU did not answer: since when, its last record (for
    its state), and the probe (a call of its own) that checks whether it
    answers again."""

    __slots__ = ('since', 'record', 'probe')

    def __init__(self, since: float, record: dict):
        self.since, self.record, self.probe = since, record, None


class Host:
    """One libvirt connection, opened on first use.

    ``timeout`` bounds each call that reads (listing, lookups, XML);
    calls that change a domain's state have LIFECYCLE_TIMEOUT.
    """

    def __init__(self, uri: str, stats_workers: int = 1,
                 timeout: float = DEFAULT_POLL_TIMEOUT):
        self.uri = uri
        #: Parallel calls a statistics poll may split into (1: one call;
        #: 0: chosen from the number of guests, see auto_workers).
        self.stats_workers = stats_workers
        # Running guests at the last poll, for the automatic choice.
        self._last_count = 0
        self.timeout = timeout
        self._conn = None
        # Connections set aside (or opened by a poll for a while) until
        # the calls stuck on them finish.
        self._retired: list = []
        self._opening: _Call | None = None
        self._lock = threading.Lock()
        # Calls that overran their caller's wait and still run in libvirt.
        self._pending: list[_Call] = []
        self._pending_lock = threading.Lock()
        # (name, domain id) -> _Stuck: guests kept out of the bulk call.
        self._stuck: dict[tuple[str, int], _Stuck] = {}

    # -- bounded calls

    def _not_answering(self, what: str, seconds: float
                       ) -> exception.HypervisorNotAnswering:
        return exception.HypervisorNotAnswering(
            uri=self.uri,
            reason=f'libvirt did not answer {what} within '
                   f'{_seconds(seconds)}: '
                   f'{_frozen_hint(self.uri)}.')

    def _start(self, fn, conn=None) -> _Call:
        """Run ``fn`` (a call on ``conn``, if given) on a worker, unless
        too many calls are still stuck."""
        with self._pending_lock:
            self._pending = [c for c in self._pending if not c.done.is_set()]
            if len(self._pending) >= MAX_PENDING_CALLS:
                age = time.monotonic() - min(c.started
                                             for c in self._pending)
                raise exception.HypervisorNotAnswering(
                    uri=self.uri,
                    reason=f'libvirt has not answered {len(self._pending)} '
                           f'earlier calls, the oldest for {age:.0f}s, so '
                           'no new one is made until it does: '
                           f'{_frozen_hint(self.uri)}.')
            return _Call(fn, conn)

    def _waited(self, call: _Call, timeout: float) -> bool:
        """Whether ``call`` answered within ``timeout``; if not, it is
        left to finish (or not) on its own, and counted."""
        if call.wait(timeout):
            return True
        with self._pending_lock:
            if call not in self._pending:
                self._pending.append(call)
        return False

    def run_bounded(self, what: str, fn, timeout: float,
                    budget: float | None = None, conn=None):
        """``fn()``, a call into libvirt (on ``conn``, if given) that may
        block on a guest's QEMU or a stuck daemon, if it returns within
        ``timeout`` seconds; else HypervisorNotAnswering naming ``what``
        and ``budget`` (the caller's whole wait) if given, and the call
        finishes alone."""
        call = self._start(fn, conn)
        if self._waited(call, timeout):
            return call.get()
        raise self._not_answering(what, budget or timeout)

    def _run_guest_call(self, what: str, name: str, fn, slow: bool):
        """The runner of this Host's Guests: each call bounded."""
        return self.run_bounded(f'{what} for guest {name}', fn,
                                LIFECYCLE_TIMEOUT if slow else self.timeout)

    def _guest(self, domain) -> libvirt_guest.Guest:
        return libvirt_guest.Guest(domain, self._run_guest_call)

    @property
    def pending_calls(self) -> int:
        """Calls that overran their wait and have not returned yet."""
        with self._pending_lock:
            return sum(not c.done.is_set() for c in self._pending)

    # -- the connection

    def connect(self, timeout: float | None = None,
                budget: float | None = None) -> 'libvirt.virConnect':
        """The connection, opening it if need be and waiting at most
        ``timeout`` seconds (default: this Host's; an embedded driver,
        which probes QEMU when it opens and has no daemon to hang, at
        least CONNECT_TIMEOUT). Callers arriving while it opens wait for
        the same open, never start another. ``budget``: the caller's
        whole wait, named in the error."""
        conn = self._conn
        if conn is not None:
            return conn
        timeout = self.timeout if timeout is None else timeout
        if embed_root_of(self.uri) is not None:
            timeout, budget = max(timeout, CONNECT_TIMEOUT), None
        with self._lock:
            if self._conn is not None:
                return self._conn
            call = self._opening
            if call is None:
                call = self._opening = self._start(self._open_and_keep)
        if not self._waited(call, timeout):
            raise self._not_answering('open()', budget or timeout)
        return call.get()

    def _open_and_keep(self) -> 'libvirt.virConnect':
        try:
            conn = self._open()
            with self._lock:
                if self._conn is None:
                    self._conn = conn
                return self._conn
        finally:
            with self._lock:
                self._opening = None

    def _open(self) -> 'libvirt.virConnect':
        root = embed_root_of(self.uri)
        if self.uri.startswith(EMBED_PREFIX) and root is None:
            raise exception.HypervisorUnavailable(
                uri=self.uri, reason='an embedded URI names its root '
                                     'directory: add ?root=DIR to it.')
        if root is not None and not os.path.isabs(root):
            raise exception.HypervisorUnavailable(
                uri=self.uri,
                reason=f'the embedded root {root!r} is not an absolute '
                       'path: set [DEFAULT] state_path to one.')
        if root is not None and os.geteuid() != 0:
            raise exception.HypervisorUnavailable(
                uri=self.uri,
                reason='the embedded QEMU driver runs QEMU as root: run '
                       'as root, or set [libvirt] connection_uri to a '
                       'libvirtd you may use.')
        if root is not None:
            try:
                prepare_embed_root(root)
            except OSError as e:
                raise exception.HypervisorUnavailable(
                    uri=self.uri,
                    reason=f'cannot prepare {root}: {e.strerror}.') from None
        _start_event_loop()
        try:
            conn = libvirt.open(self.uri)
        except libvirt.libvirtError as e:
            message = e.get_error_message()
            raise exception.HypervisorUnavailable(
                uri=self.uri,
                reason=f'{message}; {_hint(self.uri, message)}.'
            ) from None
        if root is not None:
            _wait_reconnected(conn)
        return conn

    def close(self) -> None:
        """Close the connection (and any set aside), waiting at most a
        second for each."""
        with self._lock:
            conns = self._retired + [self._conn]
            self._conn, self._retired = None, []
        for conn in filter(None, conns):
            self._close(conn)

    def _close(self, conn) -> None:
        try:
            self.run_bounded('close()', conn.close, 1.0)
        except (libvirt.libvirtError, exception.NovaException):
            pass  # a dead or frozen connection is closed enough

    def _stuck_calls(self, conn) -> int:
        """Calls on ``conn`` that libvirt has not answered though their
        caller gave up (probes of stuck guests included)."""
        with self._pending_lock:
            calls = [c for c in self._pending if not c.done.is_set()]
        calls += [e.probe for e in list(self._stuck.values())
                  if e.probe is not None and not e.probe.done.is_set()]
        return sum(c.conn is conn for c in calls)

    def free_requests(self, conn=None) -> int:
        """Calls ``conn`` (default: the current connection) may still have
        served at once; the embedded driver has no such limit."""
        if self.embedded:
            return MAX_PENDING_CALLS
        return CLIENT_REQUESTS - self._stuck_calls(conn or self._conn)

    @property
    def embedded(self) -> bool:
        """Whether this is an embedded QEMU driver (no daemon)."""
        return embed_root_of(self.uri) is not None

    def retire(self, conn) -> None:
        """Close ``conn`` once no call is stuck on it (see _make_room)."""
        with self._lock:
            self._retired.append(conn)

    def _make_room(self) -> None:
        """Set the connection aside for a new one when calls stuck on it
        leave libvirtd fewer than two of its requests to serve (it would
        queue every new call behind them), and close connections set
        aside whose calls have all ended."""
        with self._lock:
            if self._conn is not None and self.free_requests() < 2:
                # Name the guests found stuck; without any, the cause is
                # not known yet (a QEMU, or the daemon: a poll then asks
                # the daemon on a new connection, and says which).
                guests = self.stuck_guests
                cause = (f'wait on the stopped or hung QEMU of '
                         f'{", ".join(guests)}' if guests else
                         'have not returned (a stopped QEMU, or libvirtd '
                         'itself)')
                LOG.info('%d calls to %s %s; using a new connection while '
                         'they finish.', self._stuck_calls(self._conn),
                         self.uri, cause)
                self._retired.append(self._conn)
                self._conn = None
            done = [c for c in self._retired if not self._stuck_calls(c)]
            self._retired = [c for c in self._retired if c not in done]
        for conn in done:
            self._close(conn)

    def _query(self, what: str, fn, timeout: float | None = None):
        """``fn(conn)`` on the open connection, bounded by ``timeout``
        (default: this Host's); opening has its own bound."""
        conn = self.connect()
        return self.run_bounded(what, lambda: fn(conn),
                                self.timeout if timeout is None else timeout,
                                conn=conn)

    def get_version(self) -> tuple[int, int, int]:
        """libvirt's version, as (major, minor, micro)."""
        number = self._query('getLibVersion()',
                             lambda c: c.getLibVersion())
        return number // 1000000, number // 1000 % 1000, number % 1000

    def has_min_version(self, version: tuple[int, int, int]) -> bool:
        return self.get_version() >= tuple(version)

    def define_guest(self, config: vconfig.LibvirtConfigGuest
                     ) -> libvirt_guest.Guest:
        """Define (not start) the domain ``config`` describes.

        libvirt validates the XML against its own schema first, so a
        domain it would silently "fix" is refused instead.
        """
        xml = config.to_xml()

        def define(conn):
            try:
                return conn.defineXMLFlags(
                    xml, libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
            except libvirt.libvirtError as e:
                raise exception.LibvirtCallFailed(
                    call='defineXML()', name=config.name,
                    reason=e.get_error_message()) from None
        return self._guest(self._query(
            f'defineXML() for guest {config.name}', define,
            max(self.timeout, LIFECYCLE_TIMEOUT)))

    def get_guest(self, name: str) -> libvirt_guest.Guest:
        def lookup(conn):
            try:
                return conn.lookupByName(name)
            except libvirt.libvirtError as e:
                if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    raise exception.InstanceNotFound(name=name,
                                                     uri=self.uri) from None
                raise exception.LibvirtCallFailed(
                    call='lookupByName()', name=name,
                    reason=e.get_error_message()) from None
        return self._guest(self._query(f'lookupByName() for guest {name}',
                                       lookup))

    def find_guest(self, name: str) -> libvirt_guest.Guest | None:
        """The guest ``name``, or None: from a listing, so that a guest
        expected to be missing puts no "Domain not found" error into
        libvirt's log (lookupByName does)."""
        domains, _ = _select(self._query('listAllDomains()',
                                         self._list_domains), [name])
        return self._guest(domains[0]) if domains else None

    def list_guests(self) -> list[libvirt_guest.Guest]:
        """Every domain on the connection, running or not."""
        return [self._guest(d) for d in self._query(
            'listAllDomains()', self._list_domains)]

    def _list_domains(self, conn) -> list:
        try:
            return conn.listAllDomains(0)
        except libvirt.libvirtError as e:
            raise exception.HypervisorCallFailed(
                uri=self.uri, reason='libvirt failed to list domains '
                                     f'({e.get_error_message()}): see '
                                     "libvirt's log for why.") from None

    # -- statistics

    def get_memory_stats(self, names: list[str] | None = None,
                         timeout: float = DEFAULT_POLL_TIMEOUT
                         ) -> list[StatsRecord]:
        """Balloon statistics of every domain (or of ``names``), from one
        bulk libvirt call (or stats_workers parallel ones), all within
        ``timeout`` seconds, opening the connection included.

        Every bulk call is NOWAIT: a guest whose job another call holds
        comes back at once with only ``balloon.current``/``maximum``.
        Then, by how long its QEMU monitor has been busy (controlInfo(),
        which needs no job):

        - under BRIEF_BUSY (libvirt's own short jobs: reconnecting to each
          QEMU when it opens or restarts, another client's query): read
          again after a short pause, so it is not called hung;
        - longer: the guest is stuck (a stopped or hung QEMU), reported
          with ``monitor_busy`` and remembered, so later polls keep it out
          of the bulk call (which it would block again each time libvirt
          gives up on it) and only a NOWAIT probe of its own, at most one
          at a time, checks whether it answers again.

        The first call to reach a newly stuck QEMU waits for it: when a
        bulk call has not answered in half the time, another one (NOWAIT)
        reads the rest. When that one is stuck too (on a second stopped
        QEMU), the guests it reads are unanswered for this poll if libvirt
        still answers a call that reaches no guest; if it does not, libvirt
        itself is stuck: HypervisorNotAnswering. Overrunning calls finish
        alone (a call inside libvirt cannot be cancelled), at most
        MAX_PENDING_CALLS; libvirtd serves only CLIENT_REQUESTS calls of a
        connection at once, so when stuck calls take nearly all of them
        the poll moves to a new connection (_make_room).

        A lost connection (a daemon restart) is reopened once; a driver
        without the bulk call is read domain by domain. A named domain
        that does not exist comes back with an error.
        """
        deadline = time.monotonic() + timeout
        self._make_room()
        for attempt in (1, 2):
            conn = self.connect(_left(deadline), timeout)
            try:
                return _Poll(self, conn, deadline, timeout).run(names)
            except libvirt.libvirtError as e:
                code = e.get_error_code()
                if code == libvirt.VIR_ERR_NO_SUPPORT:
                    return self.run_bounded(
                        'memoryStats()', functools.partial(
                            self._per_domain_stats, conn, names),
                        _left(deadline), timeout)
                if (attempt == 1 and code in _CONNECTION_ERRORS and
                        not _alive(conn)):
                    self.close()  # the next call opens a new one
                    continue
                raise exception.HypervisorUnavailable(
                    uri=self.uri,
                    reason='libvirt failed to read domain statistics '
                           f'({e.get_error_message()}): see libvirt\'s log '
                           'for why.') from None

    def _per_domain_stats(self, conn, names) -> list[StatsRecord]:
        """Fallback where the bulk call is unsupported: two calls each."""
        domains, missing = _select(self._list_domains(conn), names)
        found = []
        for domain in domains:
            guest = libvirt_guest.Guest(domain)
            try:
                active = guest.is_active()
                stats = guest.get_memory_stats() if active else {}
            except exception.LibvirtCallFailed as e:
                found.append(StatsRecord(
                    guest, domain.name(), domain.UUIDString(), False, {},
                    str(e)))
                continue
            found.append(StatsRecord(
                guest, guest.name, guest.uuid, active, stats))
        return found + [_missing(name, self.uri) for name in missing]

    @property
    def stuck_guests(self) -> list[str]:
        """Names of the guests currently kept out of the bulk call."""
        return sorted(name for name, _ in self._stuck)

    def get_xml_descs(self, guests: list, timeout: float
                      ) -> dict[int, str | Exception]:
        """Each guest's XML (or the error reading it), by list index,
        within ``timeout``: those not read by then get
        HypervisorNotAnswering, the others keep their XML. A guest that
        is not running gives its persistent definition. The guests are
        those of StatsRecord, which call libvirt directly: the
        whole read is bounded here."""
        found = {}

        def read():
            for index, guest in enumerate(guests):
                try:
                    found[index] = guest.get_xml_desc()
                except exception.LibvirtCallFailed as e:
                    found[index] = e
        try:
            self.run_bounded('XMLDesc()', read, timeout, conn=self._conn)
        except exception.HypervisorNotAnswering as e:
            late = e
        else:
            return found
        done = dict(found)  # a snapshot: the reader may still add more
        return {index: done.get(index, late)
                for index in range(len(guests))}


class _Poll:
    """One statistics poll of a Host: the steps of get_memory_stats."""

    KINDS = (libvirt.VIR_DOMAIN_STATS_BALLOON |
             libvirt.VIR_DOMAIN_STATS_STATE)
    NOWAIT = libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT

    def __init__(self, host: Host, conn, deadline: float, budget: float):
        self.host, self.conn = host, conn
        self.deadline, self.budget = deadline, budget

    def _bounded(self, what: str, fn):
        return self.host.run_bounded(what, fn, _left(self.deadline),
                                     self.budget, self.conn)

    def _stats(self, domains, conn=None) -> list:
        """domainListGetStats (NOWAIT) of ``domains``; callers bound it."""
        return (conn or self.conn).domainListGetStats(
            domains, self.KINDS, self.NOWAIT) if domains else []

    def _first_wait(self) -> float:
        return min(FIRST_WAIT, _left(self.deadline) / 2)

    def _one_call(self) -> list:
        """Every guest's record from one bulk call if it answers within
        FIRST_WAIT; else the guests are listed and read again one per
        call (_singles)."""
        first = self.host._start(functools.partial(
            self.conn.getAllDomainStats, self.KINDS, self.NOWAIT),
            self.conn)
        if self.host._waited(first, self._first_wait()):
            return first.get()
        try:
            domains = self.host.run_bounded(
                'listAllDomains()', functools.partial(
                    self.conn.listAllDomains, 0),
                min(ALIVE_WAIT, _left(self.deadline)), conn=self.conn)
        except exception.HypervisorNotAnswering:
            raise self.host._not_answering('getAllDomainStats()',
                                           self.budget) from None
        return self._singles(domains, answered=False)

    def _chunked(self, domains) -> list:
        """The records of ``domains``, in stats_workers parallel chunks
        where there are enough of them (as many as calls stuck on the
        connection leave libvirtd to serve, one kept for other calls).
        A chunk that has not answered within FIRST_WAIT is stuck on a
        stopped or hung QEMU: its guests are read again one per call
        (_singles), so a stuck guest holds up no other.

        libvirt asks each guest's QEMU in turn within one call; measured
        with 12 real guests, one call took 18.6 ms and four parallel
        chunks 9.5 ms (libvirt-python releases the GIL during the call).
        """
        if self.host.stats_workers == 0:
            workers = auto_workers(len(domains))
        else:
            workers = min(self.host.stats_workers, len(domains) // 2)
        workers = max(1, min(workers,
                             self.host.free_requests(self.conn) - 1))
        chunks = [domains[i::workers] for i in range(workers)]
        calls = [self.host._start(functools.partial(self._stats, chunk),
                                  self.conn)
                 for chunk in chunks]
        end = time.monotonic() + self._first_wait()
        records, late = [], []
        for call, chunk in zip(calls, chunks):
            if self.host._waited(call, end - time.monotonic()):
                records += call.get()
            else:
                late += chunk
        return records + self._singles(late, answered=bool(records))

    def _singles(self, domains: list, answered: bool) -> list:
        """The records of ``domains``, which late bulk calls were to read,
        each read again by a NOWAIT call of its own (in at most MAX_SINGLES
        groups), all at once, on connections with room for them.

        A call skips the guest a late call is stuck on (its job is held)
        and answers at once, unless its guest's QEMU is stopped too: then
        it is stuck in its turn, and its guest alone is unanswered (None)
        for this poll. If no call of this poll answered, libvirtd is asked
        whether it answers at all (_alive): if not, HypervisorNotAnswering.
        """
        if not domains:
            return []
        groups = [domains[i::MAX_SINGLES]
                  for i in range(min(MAX_SINGLES, len(domains)))]
        calls = []  # (call, group) or (None, group): no connection
        for conn, share in self._connections(groups):
            for group in share:
                if conn is None:
                    calls.append((None, group))
                    continue
                calls.append((self.host._start(functools.partial(
                    self._stats, conn.mine(group), conn.conn), conn.conn),
                    group))
        end = time.monotonic() + min(SINGLE_WAIT, _kept_back(
            self.deadline, ALIVE_OPEN_WAIT))
        records = []
        for call, group in calls:
            if call is not None and self.host._waited(
                    call, end - time.monotonic()):
                ours = {_key(d): d for d in group}
                records += [(ours[_key(d)], r) for d, r in call.get()
                            if _key(d) in ours]
                answered = True
            else:
                records += [(domain, None) for domain in group]
        if not answered and not self._alive():
            raise self.host._not_answering('getAllDomainStats()',
                                           self.budget)
        return records

    def _connections(self, groups: list) -> list:
        """[(_Spare or None, the groups it reads)]: this poll's connection
        for as many groups as calls stuck on it leave room for (one kept
        for the listing and the XML), new ones for the rest (set aside,
        to be closed once no call is stuck on them). An embedded driver
        has no such limit. None: a connection that did not open in time."""
        if self.host.embedded:
            return [(_Spare(self.conn, None), groups)]
        here = self.host.free_requests(self.conn) - 1
        shares = [(_Spare(self.conn, None), groups[:max(0, here)])]
        rest = groups[max(0, here):]
        if not rest:
            return shares
        per = CLIENT_REQUESTS - 1
        wanted = [rest[i:i + per] for i in range(0, len(rest), per)]
        opening = [self.host._start(self._open_spare) for _ in wanted]
        wait = min(ALIVE_OPEN_WAIT, _kept_back(self.deadline,
                                               SINGLE_WAIT))
        end = time.monotonic() + wait
        for call, share in zip(opening, wanted):
            if self.host._waited(call, end - time.monotonic()):
                spare = call.get()
                self.host.retire(spare.conn)
                shares.append((spare, share))
            else:
                shares.append((None, share))
        return shares

    def _open_spare(self) -> '_Spare':
        """A new connection and its running domains (a domain is bound to
        the connection that found it)."""
        conn = self.host._open()
        return _Spare(conn, conn.listAllDomains(
            libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE))

    def _alive(self) -> bool:
        """Whether libvirtd answers a call that reaches no guest: on this
        connection, or when calls stuck on it take all that libvirtd
        serves of it at once, on a new one."""
        if self.host.free_requests(self.conn) > 0:
            ask, wait = self.conn.getLibVersion, ALIVE_WAIT
        else:
            wait = ALIVE_OPEN_WAIT

            def ask():
                conn = self.host._open()
                try:
                    return conn.getLibVersion()
                finally:
                    conn.close()
        try:
            self.host.run_bounded('getLibVersion()', ask, min(
                wait, _left(self.deadline)))
            return True
        except (exception.NovaException, libvirt.libvirtError):
            return False

    def run(self, names: list[str] | None) -> list[StatsRecord]:
        host = self.host
        missing = []
        probes = {}
        # (a first poll, its count unknown, lists: it may meet several
        # stopped QEMUs, which only a listing can tell from a stuck daemon)
        one_call = host.stats_workers == 1 or (
            host.stats_workers == 0 and host._last_count and
            auto_workers(host._last_count) <= 1)
        if names is None and not host._stuck and one_call:
            records = self._one_call()
            host._last_count = len(records)
        else:
            domains, missing = _select(self._bounded(
                'listAllDomains()', functools.partial(
                    self.conn.listAllDomains, 0)), names)
            if names is None:
                host._last_count = len(domains)
                # forget the stuck guests that are gone
                present = {_key(d) for d in domains}
                for key in list(host._stuck):
                    if key not in present:
                        del host._stuck[key]
            probes = self._start_probes(domains)
            records = self._chunked(
                [d for d in domains if _key(d) not in probes])
            records += self._probe_results(probes)
        return self._results(records) + [_missing(n, self.host.uri)
                                         for n in missing]

    def _start_probes(self, domains) -> dict:
        """{key: (domain, probe call or None)} of the stuck guests among
        ``domains``, which the bulk call must not reach (it would be stuck
        on them again whenever libvirt has given up the call that was):
        each gets a NOWAIT probe of its own, unless its last one is still
        stuck or too many calls are (None). A probe is not counted among
        the pending calls (there is at most one per stuck guest), but
        against its connection."""
        probes = {}
        for domain in domains:
            key = _key(domain)
            entry = self.host._stuck.get(key)
            if entry is None:
                continue
            if entry.probe is not None and not entry.probe.done.is_set():
                probes[key] = (domain, None)
                continue
            try:
                entry.probe = self.host._start(functools.partial(
                    self._stats, [domain]), self.conn)
            except exception.HypervisorNotAnswering:
                entry.probe = None  # too many calls stuck: not this time
            probes[key] = (domain, entry.probe)
        return probes

    def _probe_results(self, probes: dict) -> list:
        """The records of the probed guests: their figures when the probe
        answered by now (at most PROBE_WAIT), else their state only."""
        records = []
        for domain, probe in probes.values():
            if probe is not None and probe.wait(
                    min(PROBE_WAIT, _left(self.deadline))):
                records += probe.get()
            else:
                records.append((domain, {}))
        return records

    def _read_again(self, records: list, indexes: list[int],
                    pause: float) -> list[int]:
        """Read the guests ``indexes`` of ``records`` again (NOWAIT) after
        ``pause``, in place; the indexes still skipped."""
        if not indexes or _left(self.deadline) < pause + 0.1:
            return indexes
        time.sleep(pause)
        again = self.host._start(functools.partial(
            self._stats, [records[i][0] for i in indexes]))
        if not self.host._waited(again, min(1.0, _left(self.deadline))):
            return indexes
        fresh = {_key(d): r for d, r in again.get()}
        still = []
        for i in indexes:
            record = fresh.get(_key(records[i][0]))
            if record is not None:
                records[i] = (records[i][0], record)
            if record is None or figures_skipped(record):
                still.append(i)
        return still

    def _results(self, records: list) -> list[StatsRecord]:
        """StatsRecord of ``records``. A guest known to be stuck costs no
        call here: its age comes from when it was first seen stuck, its
        state from its last record (measured: under load, controlInfo() on
        a guest whose QEMU is stopped can itself wait seconds). A guest
        newly skipped is read again at once (often our own bulk call was on
        it); still skipped, libvirt is asked how long its monitor has been
        busy: briefly, it is read again after a short pause; a second or
        more, it is marked stuck. If libvirt does not say within
        CONTROL_WAIT, it is reported busy for this poll only."""
        host = self.host
        now = time.monotonic()
        busy, skipped = {}, []
        for i, (domain, record) in enumerate(records):
            if record is None:  # unanswered (see _chunked): busy
                records[i] = (domain, {'state.state': (
                    libvirt.VIR_DOMAIN_RUNNING if domain.ID() != -1 else
                    libvirt.VIR_DOMAIN_SHUTOFF)})
                busy[i] = 0.0
                continue
            entry = host._stuck.get(_key(domain)) if host._stuck else None
            if entry is not None and (not record or
                                      figures_skipped(record)):
                busy[i] = now - entry.since
                if not record:  # its probe has not answered
                    records[i] = (domain, entry.record)
            elif (record.get('state.state') in _ACTIVE_STATES and
                  figures_skipped(record)):
                skipped.append(i)
        # Often one of our own calls held it (the first bulk call still
        # on it): read it again at once, before asking libvirt anything.
        skipped = self._read_again(records, skipped, BRIEF_RETRIES[0])
        for retry_in in BRIEF_RETRIES[1:]:
            if not skipped:
                break
            domains = [records[i][0] for i in skipped]
            try:
                seconds = self.host.run_bounded(
                    'controlInfo()', functools.partial(
                        _monitors_busy, domains),
                    min(CONTROL_WAIT, _left(self.deadline)))
            except exception.HypervisorNotAnswering:
                # libvirt did not say: busy, for this poll; not marked
                # stuck on that alone (measured: under load, controlInfo()
                # can wait for a healthy guest too).
                for i in skipped:
                    busy[i] = 0.0
                break
            brief = []
            for i, busy_for in zip(skipped, seconds):
                if busy_for is not None and busy_for >= BRIEF_BUSY:
                    busy[i] = busy_for
                    host._stuck[_key(records[i][0])] = _Stuck(
                        time.monotonic() - busy_for, records[i][1])
                else:
                    brief.append(i)
                    busy[i] = busy_for or 0.0
            skipped = self._read_again(records, brief, retry_in)
            for i in brief:
                if i not in skipped:
                    busy.pop(i, None)
        for i in skipped:
            busy.setdefault(i, 0.0)
        found = []
        append = found.append
        active_states = _ACTIVE_STATES
        stuck = host._stuck
        for index, (domain, record) in enumerate(records):
            state = record.get('state.state')
            active = state in active_states
            name, domain_id = domain.name(), domain.ID()
            if stuck and active and index not in busy:
                stuck.pop((name, domain_id), None)  # it answered
            append(StatsRecord(
                None, name, None, active,
                balloon_stats_to_memory_stats(record), None,
                busy.get(index) if active else None,
                domain_id if active else -1, domain, state))
        return found


class _Spare:
    """A connection a poll reads on, and its domains by _key (None: the
    poll's own connection, whose domains the poll has)."""

    __slots__ = ('conn', 'by_key')

    def __init__(self, conn, domains):
        self.conn = conn
        self.by_key = (None if domains is None else
                       {_key(d): d for d in domains})

    def mine(self, domains: list) -> list:
        """This connection's domains of ``domains`` (those still here)."""
        if self.by_key is None:
            return domains
        return [d for d in map(self.by_key.get, map(_key, domains))
                if d is not None]


def _wait_reconnected(conn, timeout: float = RECONNECT_WAIT) -> None:
    """Wait until an embedded driver that just opened has reconnected to
    each running QEMU: it holds each one's job meanwhile (about 20 ms),
    and a process that exits before it is done can leave libvirt to kill
    the guest (seen with virsh: "shutting down, reason=daemon")."""
    deadline = time.monotonic() + timeout
    try:
        domains = conn.listAllDomains(
            libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
        while domains and time.monotonic() < deadline:
            domains = [d for d in domains if _monitor_busy(d) is not None]
            if domains:
                time.sleep(0.01)
    except libvirt.libvirtError:
        pass  # the first real call reports what is wrong


def _seconds(seconds: float) -> str:
    """'5s', '0.2s': a wait as an operator set it."""
    return f'{round(seconds, 1):g}s'


def auto_workers(guests: int) -> int:
    """Parallel chunks for a poll of ``guests`` when the number is left to
    us ([libvirt] mem_stats_poll_workers = 0): one call below
    AUTO_MIN_GUESTS, else a chunk per AUTO_GUESTS_PER_WORKER guests, at
    most twice the cores and AUTO_MAX_WORKERS.

    Measured through the system libvirtd on 2 cores, against one bulk
    call (tools/bench/memstats_poll.py, medians of paired polls): 3 guests
    in one call 1.04-1.05, split 1.10-1.15 (the listing costs more than it
    saves); 6 guests, 2 chunks 0.82, 3 chunks 0.71-0.81; 10 guests, 2
    chunks 0.73-0.81, 3 or 4 chunks 0.70; 20 guests, 4 chunks 0.61-0.74,
    more no better (libvirtd serves 5 calls of one client at a time, and
    the guests' QEMUs answering take the cores: the floor there is about
    0.54)."""
    if guests < AUTO_MIN_GUESTS:
        return 1
    most = min(AUTO_MAX_WORKERS, 2 * (os.cpu_count() or 1))
    return max(1, min(most, guests // AUTO_GUESTS_PER_WORKER))


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _kept_back(deadline: float, keep: float) -> float:
    """The time left but ``keep`` seconds (at most half of it) kept for
    what follows."""
    left = _left(deadline)
    return left - min(keep, left / 2)


def _key(domain) -> tuple[str, int]:
    """(name, id): one run of one guest (ids are new on every start)."""
    return domain.name(), domain.ID()


def _select(domains: list, names: list[str] | None) -> tuple[list, list]:
    """(the domains named ``names``, in that order, and the names that
    match none); every domain when ``names`` is None. One listing,
    matched here, however many names."""
    if names is None:
        return domains, []
    by_name = {d.name(): d for d in domains}
    found, missing = [], []
    for name in dict.fromkeys(names):
        domain = by_name.get(name)
        if domain is None:
            missing.append(name)
        else:
            found.append(domain)
    return found, missing


def _monitors_busy(domains: list) -> list[float | None]:
    """_monitor_busy of each of ``domains``."""
    return [_monitor_busy(domain) for domain in domains]


def figures_skipped(record: dict) -> bool:
    """Whether libvirt skipped a running guest's balloon query.

    QEMU's driver always adds the QEMU process's ``rss`` when it queries
    the balloon; a record with ``balloon.current`` but no ``balloon.rss``
    is one whose job was busy (the NOWAIT call skipped it). Drivers that
    give no balloon figures at all (test:///default) are not skipped ones.
    """
    return 'balloon.current' in record and 'balloon.rss' not in record


def _monitor_busy(domain) -> float | None:
    """Seconds the domain's QEMU monitor has been busy (controlInfo()
    answers without the monitor), None when it is free or unknown."""
    try:
        state, _details, busy_ms = domain.controlInfo()
    except libvirt.libvirtError:
        return None
    if state == libvirt.VIR_DOMAIN_CONTROL_OK:
        return None
    return busy_ms / 1000


def _missing(name: str, uri: str) -> StatsRecord:
    return StatsRecord(None, name, None, False, {},
                       str(exception.InstanceNotFound(name=name, uri=uri)))


def _alive(conn) -> bool:
    try:
        return bool(conn.isAlive())
    except libvirt.libvirtError:
        return False
