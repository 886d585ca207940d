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
the next calls (``bounded.Workers``).
"""

import functools
import os
import subprocess
import threading
import time
import urllib.parse

import libvirt
from oslo_log import log as logging

from nova import exception
from nova.virt.libvirt import bounded
from nova.virt.libvirt import config as vconfig
from nova.virt.libvirt import guest as libvirt_guest
from nova.virt.libvirt import qemu_process
from nova.virt.libvirt import stats_poll

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


# Seconds an embedded driver that just opened may take to reconnect to the
# running QEMUs before its connection is used.
RECONNECT_WAIT = 5.0


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


def embedded_guest_count(root: str) -> int:
    """Guests defined under an embedded root, from its files (without
    opening it: a process may open only one QEMU driver).
    """
    try:
        return sum(1 for name in os.listdir(os.path.join(root, 'etc', 'qemu'))
                   if name.endswith('.xml'))
    except OSError:
        return 0


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


# Errors after which a connection is worth reopening once.
_CONNECTION_ERRORS = frozenset((
    libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_ERR_RPC,
    libvirt.VIR_ERR_INVALID_CONN, libvirt.VIR_ERR_INTERNAL_ERROR))


def _holder(root: str) -> str:
    """' (pid N: its command line)' of the process holding an embedded
    root, from the driver's pid file; '' when it cannot be told.
    """
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


def _hint(uri: str, message: str = '', read_only: bool = False) -> str:
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


def _frozen_hint(uri: str) -> str:
    """What to check when libvirt does not answer in time."""
    if embed_root_of(uri) is not None:
        return ("check that no guest's QEMU process is stopped (kill -CONT "
                'it) and that the host is not overloaded')
    return ('check that libvirtd runs and is not stopped, and that no '
            "guest's QEMU process is stopped")


class Host:
    """One libvirt connection, opened on first use.

    ``timeout`` bounds each call that reads (listing, lookups, XML);
    calls that change a domain's state have LIFECYCLE_TIMEOUT.
    """

    def __init__(self, uri: str, stats_workers: int = 1,
                 timeout: float = DEFAULT_POLL_TIMEOUT,
                 read_only: bool = False):
        self.uri = uri
        #: Open with libvirt's VIR_CONNECT_RO (qemu:///system: its
        #: read-only socket): every call that changes something is refused.
        self.read_only = read_only
        #: Parallel calls a statistics poll may split into (1: one call;
        #: 0: chosen from the number of guests, see stats_poll.auto_workers).
        self.stats_workers = stats_workers
        # Running guests at the last poll, for the automatic choice.
        self._last_count = 0
        self.timeout = timeout
        self._conn = None
        # Connections set aside (or opened by a poll for a while) until
        # the calls stuck on them finish.
        self._retired: list = []
        self._opening: bounded.Call | None = None
        self._lock = threading.Lock()
        # Calls that overran their caller's wait and still run in libvirt.
        self._calls = bounded.Calls(self._too_many)
        # (name, domain id) -> stats_poll.Stuck: guests kept out of the
        # bulk call.
        self._stuck: dict[tuple[str, int], stats_poll.Stuck] = {}

    # -- bounded calls

    def _not_answering(self, what: str, seconds: float, why: str = '',
                       hint: str | None = None
                       ) -> exception.HypervisorNotAnswering:
        """libvirt did not answer ``what`` within ``seconds`` (``why``:
        what else it did not answer); what to check (``hint``).
        """
        return exception.HypervisorNotAnswering(
            uri=self.uri,
            reason=f'libvirt did not answer {what} within '
                   f'{bounded.seconds_text(seconds)}{why}: '
                   f'{hint or _frozen_hint(self.uri)}.')

    def daemon_not_answering(self, seconds: float
                             ) -> exception.HypervisorNotAnswering:
        """The error of a poll that libvirt answered nothing of, not even a
        call that reaches no guest: libvirt itself is stuck, not a QEMU.
        """
        if self.embedded:
            stuck, hint = ('the embedded driver',
                           'check that the host is not overloaded')
        else:
            stuck, hint = ('libvirtd', 'check that it runs and is not '
                                       'stopped (kill -CONT it)')
        return self._not_answering(
            'getAllDomainStats()', seconds,
            f', nor a call that reaches no guest, so {stuck} itself is '
            'stuck', hint)

    def _too_many(self, count: int, age: float
                  ) -> exception.HypervisorNotAnswering:
        return exception.HypervisorNotAnswering(
            uri=self.uri,
            reason=f'libvirt has not answered {count} earlier calls, the '
                   f'oldest for {age:.0f}s, so no new one is made until it '
                   f'does: {_frozen_hint(self.uri)}.')

    def _start(self, fn, conn=None) -> bounded.Call:
        """Run ``fn`` (a call on ``conn``, if given) on a worker, unless
        too many calls are still stuck (bounded.Calls).
        """
        return self._calls.start(fn, conn)

    def _waited(self, call: bounded.Call, timeout: float) -> bool:
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
        call = self._start(fn, conn)
        if self._waited(call, timeout):
            return call.result()
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
        return len(self._calls.pending())

    # -- the connection

    def connect(self, timeout: float | None = None,
                budget: float | None = None) -> 'libvirt.virConnect':
        """The connection, opening it if need be and waiting at most
        ``timeout`` seconds (default: this Host's; an embedded driver,
        which probes QEMU when it opens and has no daemon to hang, at
        least CONNECT_TIMEOUT). Callers arriving while it opens wait for
        the same open, never start another. ``budget``: the caller's
        whole wait, named in the error.
        """
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
        return call.result()

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
            conn = (libvirt.openReadOnly(self.uri) if self.read_only else
                    libvirt.open(self.uri))
        except libvirt.libvirtError as e:
            message = e.get_error_message()
            raise exception.HypervisorUnavailable(
                uri=self.uri,
                reason=f'{message}; '
                       f'{_hint(self.uri, message, self.read_only)}.'
            ) from None
        if root is not None:
            _wait_reconnected(conn)
        return conn

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
        except (libvirt.libvirtError, exception.NovaException):
            pass  # a dead or frozen connection is closed enough

    def _stuck_calls(self, conn) -> int:
        """Calls on ``conn`` that libvirt has not answered though their
        caller gave up (probes of stuck guests included).
        """
        calls = self._calls.pending()
        calls += [e.probe for e in list(self._stuck.values())
                  if e.probe is not None and not e.probe.done()]
        return sum(c.conn is conn for c in calls)

    def free_requests(self, conn=None) -> int:
        """Calls ``conn`` (default: the current connection) may still have
        served at once; the embedded driver has no such limit.
        """
        if self.embedded:
            return bounded.MAX_PENDING_CALLS
        return (stats_poll.CLIENT_REQUESTS -
                self._stuck_calls(conn or self._conn))

    @property
    def embedded(self) -> bool:
        """Whether this is an embedded QEMU driver (no daemon)."""
        return embed_root_of(self.uri) is not None

    def retire(self, conn) -> None:
        """Close ``conn`` once no call is stuck on it (see _make_room)."""
        with self._lock:
            self._retired.append(conn)

    def _make_room(self) -> None:
        """Set a daemon's connection aside for a new one once a call is
        stuck on it, and close connections set aside whose calls have all
        ended.

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
                    self._stuck_calls(self._conn)):
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
        (default: this Host's); opening has its own bound.
        """
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
        libvirt's log (lookupByName does).
        """
        domains, _ = stats_poll.select(self._query('listAllDomains()',
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
                         ) -> list[stats_poll.StatsRecord]:
        """Balloon statistics of every domain (or of ``names``), all within
        ``timeout`` seconds, opening the connection included: a
        stats_poll.Poll (see there how stopped QEMUs are met). Before it,
        a connection that calls stuck on it have left without room is set
        aside for a new one (_make_room). A lost connection (a daemon
        restart) is reopened once; a driver without the bulk call is read
        domain by domain. A named domain that does not exist comes back
        with an error.
        """
        deadline = time.monotonic() + timeout
        self._make_room()
        for attempt in (1, 2):
            conn = self.connect(bounded.left(deadline), timeout)
            try:
                return stats_poll.Poll(self, conn, deadline,
                                       timeout).run(names)
            except libvirt.libvirtError as e:
                code = e.get_error_code()
                if code == libvirt.VIR_ERR_NO_SUPPORT:
                    return self.run_bounded(
                        'memoryStats()', functools.partial(
                            stats_poll.per_domain_stats,
                            self._list_domains(conn), names, self.uri),
                        bounded.left(deadline), timeout)
                if (attempt == 1 and code in _CONNECTION_ERRORS and
                        not _alive(conn)):
                    self.close()  # the next call opens a new one
                    continue
                raise exception.HypervisorUnavailable(
                    uri=self.uri,
                    reason='libvirt failed to read domain statistics '
                           f'({e.get_error_message()}): see libvirt\'s log '
                           'for why.') from None

    def qemu_started_at(self, name: str) -> float | None:
        """When guest ``name``'s QEMU process started, where this host's
        files tell (nova.virt.libvirt.qemu_process), else None.
        """
        return qemu_process.started_at(
            qemu_process.state_dir(self.uri, embed_root_of(self.uri)), name)

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
        those of stats_poll.StatsRecord, which call libvirt directly: the
        whole read is bounded here.
        """
        found = {}
        conn = self._conn
        rebind = (conn is not None and not self.embedded and
                  self._stuck_calls(conn))
        if rebind:
            # Not on a connection with stuck calls (see _make_room): the
            # guests are found again on a new one, by UUID (a local read).
            self._make_room()
            deadline = time.monotonic() + timeout
            conn = self.connect(timeout)
            timeout = bounded.left(deadline)

        def read():
            for index, guest in enumerate(guests):
                try:
                    if rebind:
                        guest = libvirt_guest.Guest(
                            conn.lookupByUUIDString(guest.uuid))
                    found[index] = guest.get_xml_desc()
                except exception.LibvirtCallFailed as e:
                    found[index] = e
                except libvirt.libvirtError as e:  # gone since the poll
                    found[index] = exception.LibvirtCallFailed(
                        call='lookupByUUIDString()', name=guest.name,
                        reason=e.get_error_message())
        try:
            self.run_bounded('XMLDesc()', read, timeout, conn=conn)
        except exception.HypervisorNotAnswering as e:
            late = e
        else:
            return found
        done = dict(found)  # a snapshot: the reader may still add more
        return {index: done.get(index, late)
                for index in range(len(guests))}


def _wait_reconnected(conn, timeout: float = RECONNECT_WAIT) -> None:
    """Wait until an embedded driver that just opened has reconnected to
    each running QEMU: it holds each one's job meanwhile (about 20 ms),
    and a process that exits before it is done can leave libvirt to kill
    the guest (seen with virsh: "shutting down, reason=daemon").
    """
    deadline = time.monotonic() + timeout
    try:
        domains = conn.listAllDomains(
            libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
        while domains and time.monotonic() < deadline:
            domains = [d for d in domains
                       if stats_poll.monitor_busy(d) is not None]
            if domains:
                time.sleep(0.01)
    except libvirt.libvirtError:
        pass  # the first real call reports what is wrong


def _alive(conn) -> bool:
    try:
        return bool(conn.isAlive())
    except libvirt.libvirtError:
        return False

