"""The hypervisor behind one door: a libvirt connection and its event loop.

``Host`` opens one connection (lazily), runs libvirt's default event loop in
a daemon thread, prepares an embedded QEMU driver's root, and looks guests
up. This module and guest.py are the only importers of libvirt-python; no
other module may import it. It must not read nova.conf: it gets a URI.

Reading statistics is bounded here, at the door: a guest whose QEMU does not
answer its monitor (stopped, stuck in a migration) blocks libvirt's bulk
call, and a call stuck inside libvirt cannot be cancelled. So each such call
runs on a worker thread of its own, the caller waits at most its timeout,
and a call that overran is left to finish on its own, counted, and never
repeated past a small limit (see ``Host.get_memory_stats``). Worker threads
are kept for the next calls (``_Workers``).
"""

import functools
import os
import queue
import threading
import time
import urllib.parse

import libvirt

from nova import exception
from nova.virt.libvirt import config as vconfig
from nova.virt.libvirt import guest as libvirt_guest

EMBED_PREFIX = 'qemu:///embed'

# The embedded driver's qemu.conf. stdio_handler: no virtlogd here. user and
# group root: on hosts where /dev/kvm exists but QEMU's default user cannot
# open it, libvirt finds KVM "enabled when probing but not available now"
# and re-probes QEMU on every call (a define took ~40 s); as root it can
# open /dev/kvm and the capabilities cache holds. remember_owner 0: the
# files are root's already, so no xattr bookkeeping (and no warnings).
EMBED_QEMU_CONF = """\
# Written by nova-libvirt for its embedded QEMU driver; rewritten on use.
stdio_handler = "file"
user = "root"
group = "root"
remember_owner = 0
"""

# Seconds a poll waits for libvirt unless told otherwise.
DEFAULT_POLL_TIMEOUT = 5.0
# Seconds opening a connection may take (an embedded driver probes QEMU).
CONNECT_TIMEOUT = 30.0
# Calls libvirt has not answered that a Host keeps waiting on; past this it
# starts no more and fails at once, so stuck threads never pile up.
MAX_PENDING_CALLS = 8

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
# Errors after which a connection is worth reopening once.
_CONNECTION_ERRORS = frozenset((
    libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_ERR_RPC,
    libvirt.VIR_ERR_INVALID_CONN, libvirt.VIR_ERR_INTERNAL_ERROR))


class DomainMemoryStats:
    """One domain's balloon figures, named as virDomainMemoryStats names
    them (``actual``, ``rss``, ``last_update`` ...), in KiB or seconds.

    ``uuid`` is read from the domain only when first asked for (a local
    call, but one per domain per poll adds up at a thousand guests).
    """

    __slots__ = ('_guest', '_domain', 'name', '_uuid', 'active', 'stats',
                 'error', 'monitor_busy', 'domain_id')

    def __init__(self, guest: libvirt_guest.Guest | None, name: str,
                 uuid: str | None, active: bool, stats: dict,
                 error: str | None = None,
                 monitor_busy: float | None = None, domain_id: int = -1,
                 domain=None):
        # Without a guest, the virDomain is wrapped when first asked for.
        self._guest, self._domain = guest, domain
        self.name, self._uuid = name, uuid
        self.active, self.stats, self.error = active, stats, error
        #: Seconds the guest's QEMU monitor had been busy when libvirt
        #: skipped its figures; None when libvirt did read them.
        self.monitor_busy = monitor_busy
        #: The running domain's id (new on every start), -1 when off.
        self.domain_id = domain_id

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
        return (f'<DomainMemoryStats {self.name} active={self.active} '
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
    return f' (pid {pid}: {command[:100]})'


def _hint(uri: str, message: str = '') -> str:
    root = embed_root_of(uri)
    if root is not None:
        if 'pid file' in message or 'driver.pid' in message:
            return (f'another process holds the embedded root {root}'
                    f'{_holder(root)}: stop it, or use another [DEFAULT] '
                    'state_path')
        return ('install the libvirt and QEMU packages in bindep.txt; only '
                'one process at a time may use an embedded root')
    if uri.startswith('qemu:///system') or uri.startswith('lxc:'):
        return ('install libvirt-daemon-system and start libvirtd, or leave '
                '[libvirt] connection_uri unset to use the embedded QEMU '
                'driver')
    return 'check [libvirt] connection_uri'


class _Workers:
    """Daemon threads that run libvirt calls, kept for the next ones.

    Starting a thread per call cost about 0.3 ms a poll. A call stuck in
    libvirt keeps its thread; the others come back for more work, so
    there are never more threads than calls once running at the same time
    (Host stops starting calls past MAX_PENDING_CALLS stuck ones). Daemon
    threads, so that a call that never returns never holds up exit.
    """

    def __init__(self):
        self._calls = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # threads that will take a call without being made

    def run(self, call: '_Call') -> None:
        with self._lock:
            make = not self._idle
            if not make:
                self._idle -= 1
        self._calls.put(call)
        if make:
            threading.Thread(target=self._serve, daemon=True,
                             name='libvirt-call').start()

    def _serve(self) -> None:
        while True:
            call = self._calls.get()
            call.run()
            with self._lock:
                self._idle += 1
            # Idle before the caller hears of it: its next call must find
            # this thread free, not start another.
            call.done.set()


_WORKERS = _Workers()


class _Call:
    """One libvirt call, run by a worker thread."""

    def __init__(self, fn):
        self._fn = fn
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


class Host:
    """One libvirt connection, opened on first use."""

    def __init__(self, uri: str, stats_workers: int = 1):
        self.uri = uri
        #: Parallel calls a statistics poll may split into (1: one call).
        self.stats_workers = stats_workers
        self._conn = None
        self._lock = threading.Lock()
        # Calls that overran their caller's wait and still run in libvirt.
        self._pending: list[_Call] = []
        self._pending_lock = threading.Lock()

    # -- bounded calls

    def _start(self, fn) -> _Call:
        """Run ``fn`` on a worker, unless too many calls are still stuck."""
        with self._pending_lock:
            self._pending = [c for c in self._pending if not c.done.is_set()]
            if len(self._pending) >= MAX_PENDING_CALLS:
                age = time.monotonic() - min(c.started
                                             for c in self._pending)
                raise exception.HypervisorNotAnswering(
                    uri=self.uri,
                    reason=f'libvirt has not answered {len(self._pending)} '
                           f'earlier calls, the oldest for {age:.0f}s; is '
                           'libvirtd (or QEMU) stopped? Calls resume once '
                           'it answers.')
            return _Call(fn)

    def _waited(self, call: _Call, timeout: float) -> bool:
        """Whether ``call`` answered within ``timeout``; if not, it is
        left to finish (or not) on its own, and counted."""
        if call.wait(timeout):
            return True
        with self._pending_lock:
            self._pending.append(call)
        return False

    def run_bounded(self, what: str, fn, timeout: float,
                    budget: float | None = None):
        """``fn()``, a call into libvirt (through Guest) that may block on a
        guest's QEMU or a stuck daemon, if it returns within ``timeout``
        seconds; else HypervisorNotAnswering, naming ``budget`` (the
        caller's whole wait) if given, and the call finishes alone."""
        call = self._start(fn)
        if self._waited(call, timeout):
            return call.get()
        raise exception.HypervisorNotAnswering(
            uri=self.uri,
            reason=f'libvirt did not answer {what} within '
                   f'{budget or timeout:g}s; is libvirtd stopped?')

    @property
    def pending_calls(self) -> int:
        """Calls that overran their wait and have not returned yet."""
        with self._pending_lock:
            return sum(not c.done.is_set() for c in self._pending)

    # -- the connection

    def get_connection(self) -> 'libvirt.virConnect':
        with self._lock:
            if self._conn is None:
                self._conn = self._open()
            return self._conn

    def connect(self, timeout: float = CONNECT_TIMEOUT) -> None:
        """Open the connection now, waiting at most ``timeout`` seconds."""
        if self._conn is None:
            self.run_bounded('open()', self.get_connection, timeout)

    def _open(self) -> 'libvirt.virConnect':
        root = embed_root_of(self.uri)
        if self.uri.startswith(EMBED_PREFIX) and root is None:
            raise exception.HypervisorUnavailable(
                uri=self.uri, reason='an embedded URI needs ?root=DIR.')
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
        return conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                except libvirt.libvirtError:
                    pass  # a connection that died is closed enough
                self._conn = None

    def reconnect(self) -> None:
        """Drop the connection; the next call opens a new one."""
        self.close()

    def get_version(self) -> tuple[int, int, int]:
        """libvirt's version, as (major, minor, micro)."""
        number = self.get_connection().getLibVersion()
        return number // 1000000, number // 1000 % 1000, number % 1000

    def has_min_version(self, version: tuple[int, int, int]) -> bool:
        return self.get_version() >= tuple(version)

    def define_guest(self, config: vconfig.LibvirtConfigGuest
                     ) -> libvirt_guest.Guest:
        """Define (not start) the domain ``config`` describes.

        libvirt validates the XML against its own schema first, so a
        domain it would silently "fix" is refused instead.
        """
        conn = self.get_connection()
        try:
            return libvirt_guest.Guest(conn.defineXMLFlags(
                config.to_xml(), libvirt.VIR_DOMAIN_DEFINE_VALIDATE))
        except libvirt.libvirtError as e:
            raise exception.LibvirtCallFailed(
                call='defineXML()', name=config.name,
                reason=e.get_error_message()) from None

    def get_guest(self, name: str) -> libvirt_guest.Guest:
        conn = self.get_connection()
        try:
            return libvirt_guest.Guest(conn.lookupByName(name))
        except libvirt.libvirtError as e:
            if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                raise exception.InstanceNotFound(name=name,
                                                 uri=self.uri) from None
            raise exception.LibvirtCallFailed(
                call='lookupByName()', name=name,
                reason=e.get_error_message()) from None

    def list_guests(self) -> list[libvirt_guest.Guest]:
        """Every domain on the connection, running or not."""
        conn = self.get_connection()
        try:
            domains = conn.listAllDomains(0)
        except libvirt.libvirtError as e:
            raise exception.HypervisorUnavailable(
                uri=self.uri, reason='listing domains failed: '
                                     f'{e.get_error_message()}') from None
        return [libvirt_guest.Guest(d) for d in domains]

    @staticmethod
    def _lookup(conn, names) -> tuple[list, list[str]]:
        """(domains, names not found) for ``names``."""
        domains, missing = [], []
        for name in names:
            try:
                domains.append(conn.lookupByName(name))
            except libvirt.libvirtError as e:
                if e.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                    raise
                missing.append(name)
        return domains, missing

    def _bulk_stats(self, names):
        conn = self.get_connection()
        kinds = libvirt.VIR_DOMAIN_STATS_BALLOON | \
            libvirt.VIR_DOMAIN_STATS_STATE
        # NOWAIT: a guest whose job another call holds (one stuck on a
        # frozen QEMU, a migration) comes back without its guest figures
        # at once, instead of after libvirt's 30 s job timeout.
        flags = libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT
        workers = self.stats_workers
        if names is None:
            if workers <= 1:
                return conn.getAllDomainStats(kinds, flags), []
            domains, missing = conn.listAllDomains(0), []
        else:
            domains, missing = self._lookup(conn, names)
        return self._chunked_stats(conn, domains, kinds, flags), missing

    def _chunked_stats(self, conn, domains, kinds, flags) -> list:
        """domainListGetStats of ``domains``, in stats_workers parallel
        chunks where there are enough of them.

        libvirt asks each guest's QEMU in turn within one call; measured
        with 12 real guests, one call took 18.6 ms and four parallel
        chunks 9.5 ms (libvirt-python releases the GIL during the call).
        """
        workers = min(self.stats_workers, len(domains) // 2)
        if workers <= 1:
            return (conn.domainListGetStats(domains, kinds, flags)
                    if domains else [])
        chunks = [domains[i::workers] for i in range(workers)]
        calls = [_Call(functools.partial(
            conn.domainListGetStats, chunk, kinds, flags))
            for chunk in chunks]
        records = []
        for call in calls:
            call.done.wait()  # bounded by the caller's wait on this one
            records += call.get()
        return records

    def _per_domain_stats(self, names) -> list[DomainMemoryStats]:
        """Fallback where the bulk call is unsupported: two calls each."""
        conn = self.get_connection()
        if names is None:
            domains, missing = conn.listAllDomains(0), []
        else:
            domains, missing = self._lookup(conn, names)
        found = []
        for domain in domains:
            guest = libvirt_guest.Guest(domain)
            try:
                active = guest.is_active()
                stats = guest.get_memory_stats() if active else {}
            except exception.LibvirtCallFailed as e:
                found.append(DomainMemoryStats(
                    guest, domain.name(), domain.UUIDString(), False, {},
                    str(e)))
                continue
            found.append(DomainMemoryStats(
                guest, guest.name, guest.uuid, active, stats))
        return found + [_missing(name) for name in missing]

    def get_memory_stats(self, names: list[str] | None = None,
                         timeout: float = DEFAULT_POLL_TIMEOUT
                         ) -> list[DomainMemoryStats]:
        """Balloon statistics of every domain (or of ``names``) in one
        libvirt call, virConnectGetAllDomainStats, within ``timeout``.

        The call runs on a worker thread. The first call to reach a guest
        whose QEMU does not answer waits for it, holding that guest's job;
        so when the first call has not answered in half the time, a second
        one (NOWAIT) reads every other guest at once and reports the stuck
        one with ``monitor_busy``. When neither answers in time, libvirt
        itself is stuck: HypervisorNotAnswering. Overrunning calls are left
        to finish on their own (a call inside libvirt cannot be cancelled),
        at most MAX_PENDING_CALLS of them. Opening the connection, on the
        first poll, has its own bound (CONNECT_TIMEOUT).

        A lost connection is reopened once; a driver without the bulk call
        is read domain by domain. A named domain that does not exist comes
        back with an error, and the rest are still read.
        """
        deadline = time.monotonic() + timeout
        self.connect()
        read = functools.partial(self._read_memory_stats, names)
        first = self._start(read)
        if self._waited(first, timeout / 2):
            return first.get()
        return self.run_bounded('getAllDomainStats()', read,
                                deadline - time.monotonic(), budget=timeout)

    def _read_memory_stats(self, names) -> list[DomainMemoryStats]:
        for attempt in (1, 2):
            conn = self.get_connection()
            try:
                records, missing = self._bulk_stats(names)
                break
            except libvirt.libvirtError as e:
                code = e.get_error_code()
                if code == libvirt.VIR_ERR_NO_SUPPORT:
                    return self._per_domain_stats(names)
                if (attempt == 1 and code in _CONNECTION_ERRORS and
                        not _alive(conn)):
                    self.reconnect()
                    continue
                raise exception.HypervisorUnavailable(
                    uri=self.uri,
                    reason='reading domain statistics failed: '
                           f'{e.get_error_message()}') from None
        found = []
        append = found.append
        active_states = _ACTIVE_STATES
        for domain, record in records:
            active = record.get('state.state') in active_states
            append(DomainMemoryStats(
                None, domain.name(), None, active,
                balloon_stats_to_memory_stats(record), None,
                _monitor_busy(domain)
                if active and figures_skipped(record) else None,
                domain.ID() if active else -1, domain))
        return found + [_missing(name) for name in missing]

    def get_xml_descs(self, guests: list, timeout: float
                      ) -> dict[int, str | Exception]:
        """Each guest's live XML (or the error reading it), by list index,
        all within ``timeout``; HypervisorUnavailable past it."""
        def read():
            found = {}
            for index, guest in enumerate(guests):
                try:
                    found[index] = guest.get_xml_desc()
                except exception.LibvirtCallFailed as e:
                    found[index] = e
            return found
        return self.run_bounded('XMLDesc()', read, timeout)


def figures_skipped(record: dict) -> bool:
    """Whether libvirt skipped a running guest's balloon query.

    QEMU's driver always adds the QEMU process's ``rss`` when it queries
    the balloon; a record with ``balloon.current`` but no ``balloon.rss``
    is one whose job was busy (the NOWAIT call skipped it). Drivers that
    give no balloon figures at all (test:///default) are not skipped ones.
    """
    return 'balloon.current' in record and 'balloon.rss' not in record


def _monitor_busy(domain) -> float:
    """Seconds the domain's QEMU monitor has been busy (controlInfo()
    answers without the monitor); 0 when it is free again or unknown."""
    try:
        state, _details, busy_ms = domain.controlInfo()
    except libvirt.libvirtError:
        return 0.0
    if state == libvirt.VIR_DOMAIN_CONTROL_OK:
        return 0.0
    return busy_ms / 1000


def _missing(name: str) -> DomainMemoryStats:
    return DomainMemoryStats(None, name, None, False, {},
                             f'No guest named {name}.')


def _alive(conn) -> bool:
    try:
        return bool(conn.isAlive())
    except libvirt.libvirtError:
        return False
