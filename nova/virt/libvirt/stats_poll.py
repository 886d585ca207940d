"""The statistics poll: every guest's balloon figures from libvirt's bulk
call, within a bound, whatever QEMUs are stopped.

``Poll`` is one poll over a connection.Connections (see
Host.get_memory_stats for what it guarantees): NOWAIT bulk calls in
parallel chunks, the guests of a late call read again one per call on
spare connections, guests found stuck kept out of later bulk calls (a
stuck.StuckGuests) and probed, libvirt asked how long a skipped guest's
monitor has been busy. It is handed the connections and the registry,
never a Host, and returns records.StatsRecord. It must not read
nova.conf.
"""

import functools
import os
import time

from nova import exception
from nova.virt.libvirt import api
from nova.virt.libvirt import bounded
from nova.virt.libvirt import late_reads
from nova.virt.libvirt import records
from nova.virt.libvirt import stuck

# Pauses before each such re-read (seconds); measured, libvirt's reconnect
# job holds a domain about 20 ms.
BRIEF_RETRIES = (0.02, 0.05, 0.1, 0.2, 0.4)


# The automatic choice of parallel chunks (auto_workers).
AUTO_MIN_GUESTS = 6


AUTO_GUESTS_PER_WORKER = 2


AUTO_MAX_WORKERS = 4



# Seconds a poll waits for its first bulk calls. A healthy poll takes ~20
# ms; a call still running after this is stuck on a stopped or hung QEMU
# (or the host is loaded), and the guests it was to read are read again,
# one per call (SINGLE_WAIT).
FIRST_WAIT = 0.5


# Seconds a poll waits for the probe of a guest known to be stuck.
PROBE_WAIT = 0.25


class Poll:
    """One statistics poll of a Host's connection, within its deadline.

    Every bulk call is NOWAIT: a guest whose job another call holds comes
    back at once with only ``balloon.current``/``maximum``. Then, by how
    long its QEMU monitor has been busy (controlInfo(), which needs no
    job):

    - under BRIEF_BUSY (libvirt's own short jobs: reconnecting to each
      QEMU when it opens or restarts, another client's query): read again
      after a short pause, so it is not called hung;
    - longer: the guest is stuck (a stopped or hung QEMU), reported with
      ``monitor_busy`` and remembered, so later polls keep it out of the
      bulk call and only a NOWAIT probe of its own, at most one at a time,
      checks whether it answers again.

    The first call to reach a newly stopped QEMU waits for it: a bulk call
    late after FIRST_WAIT has each of its guests read again by a call of
    its own (late_reads), on connections with room (libvirtd serves only
    connection.CLIENT_REQUESTS calls of a connection at once). The guest
    the late call holds is skipped at once, another stopped QEMU holds
    only its own call, and every healthy guest answers. If no call
    answered at all, libvirt is asked whether it answers a call that
    reaches no guest; if not, libvirt itself is stuck:
    HypervisorNotAnswering. Overrunning calls finish alone
    (a call inside libvirt cannot be cancelled), at most
    bounded.MAX_PENDING_CALLS of them.
    """

    KINDS = (api.VIR_DOMAIN_STATS_BALLOON |
             api.VIR_DOMAIN_STATS_STATE)
    NOWAIT = api.VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT

    def __init__(self, connections, stuck_guests, conn, deadline: float,
                 budget: float, workers: int = 1, last_count: int = 0):
        #: connection.Connections: every call goes through it
        self.connections = connections
        #: stuck.StuckGuests: the guests kept out of the bulk call
        self.stuck = stuck_guests
        self.conn = conn
        self.deadline, self.budget = deadline, budget
        #: parallel chunks (0: auto_workers), and the guests the last
        #: full poll found (for the automatic choice)
        self.workers, self.last_count = workers, last_count
        #: the guests a full poll found (set by run())
        self.count: int | None = None
        #: what late bulk calls were to read, read again
        self.late = late_reads.LateReads(connections, conn, deadline,
                                         budget, self._stats)

    def _bounded(self, what: str, fn):
        return self.connections.run_bounded(
            what, fn, bounded.left(self.deadline), self.budget, self.conn)

    def _stats(self, domains, conn=None) -> list:
        """domainListGetStats (NOWAIT) of ``domains``; callers bound it."""
        return (conn or self.conn).domainListGetStats(
            domains, self.KINDS, self.NOWAIT) if domains else []

    def _first_wait(self) -> float:
        return min(FIRST_WAIT, bounded.left(self.deadline) / 2)

    def _one_call(self) -> list:
        """Every guest's record from one bulk call if it answers within
        FIRST_WAIT; else the guests are listed and read again one per
        call (late_reads).
        """
        first = self.connections.start(functools.partial(
            self.conn.getAllDomainStats, self.KINDS, self.NOWAIT),
            self.conn)
        if self.connections.waited(first, self._first_wait()):
            return first.result()
        try:
            domains = self.connections.run_bounded(
                'listAllDomains()', functools.partial(
                    self.conn.listAllDomains, 0),
                min(late_reads.ALIVE_WAIT, bounded.left(self.deadline)),
                conn=self.conn)
        except exception.HypervisorNotAnswering:
            raise self.connections.daemon_not_answering(self.budget) from None
        return self.late.read(domains, answered=False)

    def _chunked(self, domains) -> list:
        """The records of ``domains``, in stats_workers parallel chunks
        where there are enough of them (as many as calls stuck on the
        connection leave libvirtd to serve, one kept for other calls).
        A chunk that has not answered within FIRST_WAIT is stuck on a
        stopped or hung QEMU: its guests are read again one per call
        (late_reads), so a stuck guest holds up no other.

        libvirt asks each guest's QEMU in turn within one call; measured
        with 12 real guests, one call took 18.6 ms and four parallel
        chunks 9.5 ms (libvirt-python releases the GIL during the call).
        """
        if self.workers == 0:
            workers = auto_workers(len(domains))
        else:
            workers = min(self.workers, len(domains) // 2)
        workers = max(1, min(workers,
                             self.connections.free_requests(self.conn) - 1))
        chunks = [domains[i::workers] for i in range(workers)]
        calls = [self.connections.start(functools.partial(self._stats, chunk),
                                  self.conn)
                 for chunk in chunks]
        end = time.monotonic() + self._first_wait()
        found, late = [], []
        for call, chunk in zip(calls, chunks):
            if self.connections.waited(call, end - time.monotonic()):
                found += call.result()
            else:
                late += chunk
        return found + self.late.read(late, answered=bool(found))

    def run(self, names: list[str] | None) -> list[records.StatsRecord]:
        """Every guest's record (or those of ``names``, and one saying so
        for each name that is not there); a full poll sets ``count``.
        """
        if names is None and not self.stuck and self._one_call_will_do():
            found = self._one_call()
            self.count = len(found)
            return self._results(found)
        domains, absent = records.select(self._bounded(
            'listAllDomains()', functools.partial(
                self.conn.listAllDomains, 0)), names)
        if names is None:
            self.count = len(domains)
            # forget the stuck guests that are gone
            self.stuck.keep_only(map(records.domain_key, domains))
        probes = self._start_probes(domains)
        found = self._chunked([d for d in domains
                               if records.domain_key(d) not in probes])
        found += self._probe_results(probes)
        return self._results(found) + [
            records.missing(n, self.connections.uri) for n in absent]

    def _one_call_will_do(self) -> bool:
        """Whether one bulk call reads every guest: one chunk chosen, or
        chosen from a count (a first poll, its count unknown, lists: it
        may meet several stopped QEMUs, which only a listing can tell
        from a stuck daemon).
        """
        return self.workers == 1 or (
            self.workers == 0 and self.last_count and
            auto_workers(self.last_count) <= 1)

    def _start_probes(self, domains) -> dict:
        """{key: (domain, probe call or None)} of the stuck guests among
        ``domains``, which the bulk call must not reach (it would be stuck
        on them again whenever libvirt has given up the call that was):
        each gets a NOWAIT probe of its own, unless its last one is still
        stuck or too many calls are (None). A probe is not counted among
        the pending calls (there is at most one per stuck guest), but
        against its connection.
        """
        probes = {}
        for domain in domains:
            key = records.domain_key(domain)
            entry = self.stuck.get(key)
            if entry is None:
                continue
            if entry.probe is not None and not entry.probe.done():
                probes[key] = (domain, None)
                continue
            try:
                entry.probe = self.connections.start(functools.partial(
                    self._stats, [domain]), self.conn)
            except exception.HypervisorNotAnswering:
                entry.probe = None  # too many calls stuck: not this time
            probes[key] = (domain, entry.probe)
        return probes

    def _probe_results(self, probes: dict) -> list:
        """The records of the probed guests: their figures when the probe
        answered by now (at most PROBE_WAIT), else their state only.
        """
        found = []
        for domain, probe in probes.values():
            if probe is not None and probe.wait(
                    min(PROBE_WAIT, bounded.left(self.deadline))):
                found += probe.result()
            else:
                found.append((domain, {}))
        return found

    def _read_again(self, found: list, indexes: list[int],
                    pause: float) -> list[int]:
        """Read the guests ``indexes`` of ``found`` again (NOWAIT) after
        ``pause``, in place; the indexes still skipped.
        """
        if not indexes or bounded.left(self.deadline) < pause + 0.1:
            return indexes
        time.sleep(pause)
        conn, mine = self.late.follow_up([found[i][0] for i in indexes])
        again = self.connections.start(
            functools.partial(self._stats, mine, conn), conn)
        if not self.connections.waited(
                again, min(1.0, bounded.left(self.deadline))):
            return indexes
        fresh = {records.domain_key(d): r for d, r in again.result()}
        still = []
        for i in indexes:
            record = fresh.get(records.domain_key(found[i][0]))
            if record is not None:
                found[i] = (found[i][0], record)
            if record is None or records.figures_skipped(record):
                still.append(i)
        return still

    def _results(self, found: list) -> list[records.StatsRecord]:
        """StatsRecord of ``found`` (domain, record) pairs. A guest known
        to be stuck costs no call here: its age comes from when it was
        first seen stuck, its state from its last record (measured: under
        load, controlInfo() on a guest whose QEMU is stopped can itself
        wait seconds). A guest newly skipped is settled (_settle).
        """
        now = time.monotonic()
        busy, skipped = {}, []
        for i, (domain, record) in enumerate(found):
            if record is None:  # unanswered (see _chunked): busy
                found[i] = (domain, {'state.state': (
                    api.VIR_DOMAIN_RUNNING if domain.ID() != -1 else
                    api.VIR_DOMAIN_SHUTOFF)})
                busy[i] = 0.0
                continue
            entry = (self.stuck.get(records.domain_key(domain))
                     if self.stuck else None)
            if entry is not None and (not record or
                                      records.figures_skipped(record)):
                busy[i] = now - entry.since
                if not record:  # its probe has not answered
                    found[i] = (domain, entry.record)
            elif (record.get('state.state') in records.ACTIVE_STATES and
                  records.figures_skipped(record)):
                skipped.append(i)
        self._settle(found, skipped, busy)
        return self._records(found, busy)

    def _settle(self, found: list, skipped: list[int], busy: dict) -> None:
        """Read the newly skipped guests ``skipped`` of ``found`` again;
        still skipped, libvirt is asked how long each monitor has been
        busy: briefly, read again after a short pause; BRIEF_BUSY or more,
        marked stuck. ``busy`` gets each guest left busy (seconds).
        """
        # Often one of our own calls held it (the first bulk call still
        # on it): read it again at once, before asking libvirt anything.
        skipped = self._read_again(found, skipped, BRIEF_RETRIES[0])
        for retry_in in BRIEF_RETRIES[1:]:
            if not skipped:
                break
            try:
                seconds = self.late.busy([found[i][0] for i in skipped], min(
                    late_reads.CONTROL_WAIT, bounded.left(self.deadline)))
            except exception.HypervisorNotAnswering:
                # libvirt did not say: busy, for this poll; not marked
                # stuck on that alone (measured: under load, controlInfo()
                # can wait for a healthy guest too).
                break
            brief = []
            for i, busy_for in zip(skipped, seconds):
                busy[i] = busy_for or 0.0
                if busy_for is not None and busy_for >= stuck.BRIEF_BUSY:
                    self.stuck.mark(records.domain_key(found[i][0]),
                                    time.monotonic() - busy_for,
                                    found[i][1])
                else:
                    brief.append(i)
            skipped = self._read_again(found, brief, retry_in)
            for i in brief:
                if i not in skipped:
                    busy.pop(i, None)
        for i in skipped:
            busy.setdefault(i, 0.0)

    def _records(self, found: list, busy: dict) -> list[records.StatsRecord]:
        """The StatsRecords of ``found``; a stuck guest that answered is
        no longer stuck.
        """
        made = []
        append = made.append
        active_states = records.ACTIVE_STATES
        registry = self.stuck
        for index, (domain, record) in enumerate(found):
            state = record.get('state.state')
            active = state in active_states
            name, domain_id = domain.name(), domain.ID()
            if registry and active and index not in busy:
                registry.answered((name, domain_id))
            append(records.StatsRecord(
                None, name, None, active,
                records.balloon_stats_to_memory_stats(record), None,
                busy.get(index) if active else None,
                domain_id if active else -1, domain, state))
        return made


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
    0.54).
    """
    if guests < AUTO_MIN_GUESTS:
        return 1
    most = min(AUTO_MAX_WORKERS, 2 * (os.cpu_count() or 1))
    return max(1, min(most, guests // AUTO_GUESTS_PER_WORKER))
