"""The hypervisor, as the driver and the collector see it: guests, their
statistics, their XML.

``Host`` is a facade over the one door to libvirt
(nova.virt.libvirt.connection.Connections: opening read-only or
read-write, the connection in use and those set aside, every call
bounded) and the registry of guests whose QEMU does not answer
(nova.virt.libvirt.stuck.StuckGuests): it looks guests up, defines them,
runs a statistics poll (nova.virt.libvirt.stats_poll.Poll, handed the
connections and the registry) and reads guests' XML, each within its
bound. It must not read nova.conf: it gets a URI, and, for tests, may be
handed an ``opener`` that makes its connections.
"""

import functools
import time

from nova import exception
from nova import hints
from nova.virt.libvirt import api
from nova.virt.libvirt import bounded
from nova.virt.libvirt import config as vconfig
from nova.virt.libvirt import connection
from nova.virt.libvirt import embed
from nova.virt.libvirt import guest as libvirt_guest
from nova.virt.libvirt import qemu_process
from nova.virt.libvirt import records
from nova.virt.libvirt import stats_poll
from nova.virt.libvirt import stuck

# Seconds a poll, or a call that reads, waits for libvirt unless told
# otherwise.
DEFAULT_POLL_TIMEOUT = connection.DEFAULT_TIMEOUT

# Seconds a call that changes a domain's state (define, start, stop) may
# take: QEMU starts within it, and libvirt's own job wait is 30 s.
LIFECYCLE_TIMEOUT = 30.0


class Host:
    """One libvirt URI: its guests and their statistics.

    ``timeout`` bounds each call that reads (listing, lookups, XML);
    calls that change a domain's state have LIFECYCLE_TIMEOUT.
    ``read_only``: libvirt opened with VIR_CONNECT_RO, so every call that
    changes something is refused by libvirt itself. ``opener(uri,
    read_only)`` makes a connection (default: libvirt-python's).
    """

    def __init__(self, uri: str, stats_workers: int = 1,
                 timeout: float = DEFAULT_POLL_TIMEOUT,
                 read_only: bool = False,
                 opener=connection.open_libvirt):
        self.uri = uri
        self.read_only = read_only
        #: Parallel calls a statistics poll may split into (1: one call;
        #: 0: chosen from the number of guests, see stats_poll.auto_workers).
        self.stats_workers = stats_workers
        # Running guests at the last full poll, for the automatic choice.
        self._last_count = 0
        #: The guests whose QEMU does not answer.
        self.stuck = stuck.StuckGuests()
        #: The door: every call into libvirt goes through it.
        self.connections = connection.Connections(
            uri, read_only, timeout, opener, self.stuck.probes)

    @property
    def timeout(self) -> float:
        return self.connections.timeout

    @timeout.setter
    def timeout(self, seconds: float) -> None:
        self.connections.timeout = seconds

    @property
    def embedded(self) -> bool:
        """Whether this is an embedded QEMU driver (no daemon)."""
        return self.connections.embedded

    @property
    def pending_calls(self) -> int:
        """Calls that overran their wait and have not returned yet."""
        return self.connections.pending_calls

    def run_bounded(self, what: str, fn, timeout: float,
                    budget: float | None = None, conn=None):
        """connection.Connections.run_bounded."""
        return self.connections.run_bounded(what, fn, timeout, budget, conn)

    def connect(self, timeout: float | None = None):
        """The connection in use, opened if need be (Connections.connect)."""
        return self.connections.connect(timeout)

    def close(self) -> None:
        self.connections.close()

    def _run_guest_call(self, what: str, name: str, fn, slow: bool):
        """The runner of this Host's Guests: each call bounded."""
        return self.run_bounded(f'{what} for guest {name}', fn,
                                LIFECYCLE_TIMEOUT if slow else self.timeout)

    def _guest(self, domain) -> libvirt_guest.Guest:
        return libvirt_guest.Guest(domain, self._run_guest_call)

    def _query(self, what: str, fn, timeout: float | None = None):
        """``fn(conn)`` on the connection in use, bounded by ``timeout``
        (default: this Host's); opening has its own bound.
        """
        conn = self.connect()
        return self.run_bounded(what, lambda: fn(conn),
                                self.timeout if timeout is None else timeout,
                                conn=conn)

    # -- guests --------------------------------------------------------------

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
                    xml, api.VIR_DOMAIN_DEFINE_VALIDATE)
            except api.Error as e:
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
            except api.Error as e:
                if e.get_error_code() == api.VIR_ERR_NO_DOMAIN:
                    raise exception.InstanceNotFound(
                        name=name, uri=self.uri,
                        command=hints.command('memstats')) from None
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
        domains, _ = records.select(self._query('listAllDomains()',
                                                self._list_domains), [name])
        return self._guest(domains[0]) if domains else None

    def list_guests(self) -> list[libvirt_guest.Guest]:
        """Every domain on the connection, running or not."""
        return [self._guest(d) for d in self._query(
            'listAllDomains()', self._list_domains)]

    def _list_domains(self, conn) -> list:
        try:
            return conn.listAllDomains(0)
        except api.Error as e:
            raise exception.HypervisorCallFailed(
                uri=self.uri, reason='libvirt failed to list domains '
                                     f'({e.get_error_message()}): see '
                                     "libvirt's log for why.") from None

    def qemu_started_at(self, name: str) -> float | None:
        """When guest ``name``'s QEMU process started, where this host's
        files tell (nova.virt.libvirt.qemu_process), else None.
        """
        return qemu_process.started_at(
            qemu_process.state_dir(self.uri, embed.embed_root_of(self.uri)),
            name)

    # -- statistics ----------------------------------------------------------

    def get_memory_stats(self, names: list[str] | None = None,
                         timeout: float = DEFAULT_POLL_TIMEOUT
                         ) -> list[records.StatsRecord]:
        """Balloon statistics of every domain (or of ``names``), all within
        ``timeout`` seconds, opening the connection included: a
        stats_poll.Poll (see there how stopped QEMUs are met). Before it,
        a connection that calls stuck on it have left without room is set
        aside for a new one (Connections.make_room). A lost connection (a
        daemon restart) is reopened once; a driver without the bulk call is
        read domain by domain. A named domain that does not exist comes
        back with an error.
        """
        deadline = time.monotonic() + timeout
        self.connections.make_room(self.stuck.names)
        for attempt in (1, 2):
            conn = self.connections.connect(bounded.left(deadline), timeout)
            poll = stats_poll.Poll(self.connections, self.stuck, conn,
                                   deadline, timeout, self.stats_workers,
                                   self._last_count)
            try:
                found = poll.run(names)
            except api.Error as e:
                if attempt == 1 and self._lost(e, conn):
                    continue
                return self._without_bulk_call(e, conn, names, deadline,
                                               timeout)
            if poll.count is not None:
                self._last_count = poll.count
            return found

    def _lost(self, error, conn) -> bool:
        """Whether ``error`` lost the connection (closed: the next call
        opens a new one).
        """
        if error.get_error_code() in connection.CONNECTION_ERRORS and \
                not connection.alive(conn):
            self.close()
            return True
        return False

    def _without_bulk_call(self, error, conn, names, deadline, timeout):
        """Domain by domain, where the driver lacks the bulk call; else
        ``error`` in one line.
        """
        if error.get_error_code() == api.VIR_ERR_NO_SUPPORT:
            return self.run_bounded(
                'memoryStats()', functools.partial(
                    records.per_domain_stats, self._list_domains(conn),
                    names, self.uri),
                bounded.left(deadline), timeout)
        raise exception.HypervisorUnavailable(
            uri=self.uri,
            reason='libvirt failed to read domain statistics '
                   f'({error.get_error_message()}): see libvirt\'s log '
                   'for why.') from None

    @property
    def stuck_guests(self) -> list[str]:
        """Names of the guests currently kept out of the bulk call."""
        return self.stuck.names

    def get_xml_descs(self, guests: list, timeout: float
                      ) -> dict[int, str | Exception]:
        """Each guest's XML (or the error reading it), by list index,
        within ``timeout``: those not read by then get
        HypervisorNotAnswering, the others keep their XML. A guest that
        is not running gives its persistent definition. The guests are
        those of records.StatsRecord, which call libvirt directly: the
        whole read is bounded here. Never on a connection with a call
        stuck on it (see Connections.make_room): then the guests are
        found again on a new one, by UUID (a local read).
        """
        found = {}
        deadline = time.monotonic() + timeout
        conn, fresh = self.connections.in_use_or_fresh(timeout)
        timeout = bounded.left(deadline)

        def read():
            for index, guest in enumerate(guests):
                try:
                    if fresh:
                        guest = libvirt_guest.Guest(
                            conn.lookupByUUIDString(guest.uuid))
                    found[index] = guest.get_xml_desc()
                except exception.LibvirtCallFailed as e:
                    found[index] = e
                except api.Error as e:  # gone since the poll
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
