"""Reading again what a late bulk call was to read.

A bulk statistics call that has not answered within stats_poll.FIRST_WAIT
is stuck on a stopped or hung QEMU. ``LateReads`` reads each of its guests
again by a NOWAIT call of its own (in at most MAX_SINGLES groups), all at
once, on spare connections (libvirtd serves only
connection.CLIENT_REQUESTS calls of a connection at once, and the poll's
own keeps its places for the controlInfo() and XML reads that follow),
waits for calls only slow (a loaded host) rather than stuck, and, when no
call of the poll answered at all, asks libvirtd whether it answers a call
that reaches no guest. The spare it opened first is where the poll's
following calls go (``follow_up``). It must not read nova.conf.
"""

import functools
import time

from nova import exception
from nova.virt.libvirt import api
from nova.virt.libvirt import bounded
from nova.virt.libvirt import connection
from nova.virt.libvirt import records
from nova.virt.libvirt import stuck

# Seconds a poll waits for libvirt to say how long newly skipped guests'
# monitors have been busy; past it they count as busy for this poll.
CONTROL_WAIT = 1.0

# Seconds a poll waits for the calls that read again, one guest each,
# what a late bulk call was to read. Each skips the guest a late call is
# stuck on (NOWAIT) and answers at once, but for another stopped QEMU,
# which its own call finds. So the poll that first meets any number of
# stopped QEMUs answers within FIRST_WAIT + SINGLE_WAIT and a little more.
SINGLE_WAIT = 0.6


# Seconds a poll waits again for a call that reads one guest, when libvirt
# says its guest's monitor is free or only briefly busy (libvirtd slow on
# a loaded host, not a stopped QEMU), as long as its time allows.
PATIENCE = 0.25
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




class LateReads:
    """The late-call machinery of one poll: ``connections`` (its door),
    ``conn`` (its own connection), its ``deadline`` and ``budget`` (its
    whole wait, for the errors), and ``stats(domains, conn)``, its NOWAIT
    bulk call.
    """

    def __init__(self, connections, conn, deadline: float, budget: float,
                 stats):
        self.connections, self.conn = connections, conn
        self.deadline, self.budget = deadline, budget
        self._stats = stats
        # A connection this poll opened once a call of its own was late:
        # the calls that follow go there (see Connections.make_room).
        self.follow: _Spare | None = None

    def follow_up(self, domains: list) -> tuple:
        """(the connection for calls that follow late ones, ``domains``
        as its own): a connection this poll opened, if any (its own has
        a call stuck on it now), else its own.
        """
        if self.follow is None:
            return self.conn, domains
        return self.follow.conn, self.follow.mine(domains)

    def busy(self, domains: list, timeout: float) -> list:
        """monitor_busy of each of ``domains`` (controlInfo(), which needs
        no job), asked on the follow-up connection within ``timeout``;
        HypervisorNotAnswering if libvirt does not say in time.
        """
        conn, mine = self.follow_up(domains)
        seconds = self.connections.run_bounded(
            'controlInfo()', functools.partial(stuck.monitors_busy, mine),
            timeout, conn=conn)
        by_key = dict(zip(map(records.domain_key, mine), seconds))
        return [by_key.get(records.domain_key(d)) for d in domains]

    def read(self, domains: list, answered: bool) -> list:
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
        for conn, share in self._spares(groups):
            for group in share:
                if conn is None:
                    calls.append((None, group))
                    continue
                calls.append((self.connections.start(functools.partial(
                    self._stats, conn.mine(group), conn.conn), conn.conn),
                    group))
        keep = ALIVE_OPEN_WAIT  # for _alive, on a new connection
        end = time.monotonic() + min(SINGLE_WAIT, bounded.kept_back(
            self.deadline, keep))
        found, late = self._collect(calls, end)
        answered = answered or bool(found)
        more, late = self._wait_slow(late, keep)
        found += more + [(domain, None) for _, group in late
                         for domain in group]
        if not answered and not more and not self.alive():
            raise self.connections.daemon_not_answering(self.budget)
        return found

    def _wait_slow(self, late: list, keep: float) -> tuple[list, list]:
        """(what the ``late`` (call, group) answered, those still out): a
        call still out is held by its guest's stopped QEMU, or libvirtd is
        only slow (a loaded host); libvirt says which, by how long each
        guest's monitor has been busy, and the slow are waited for,
        PATIENCE at a time, leaving ``keep`` seconds of the poll.
        """
        found = []
        while late and bounded.kept_back(self.deadline, keep) > PATIENCE:
            slow = self._slow(late)
            if not slow:
                break
            more, slow_late = self._collect(slow, time.monotonic() +
                                            PATIENCE)
            found += more
            late = [c for c in late if c not in slow] + slow_late
        return found, late

    def _collect(self, calls: list, end: float) -> tuple[list, list]:
        """(the records of the ``calls`` (call, group) answered by
        ``end``, the (call, group) still out).
        """
        done, late = [], []
        for call, group in calls:
            if call is not None and self.connections.waited(
                    call, end - time.monotonic()):
                ours = {records.domain_key(d): d for d in group}
                done += [(ours[records.domain_key(d)], r)
                         for d, r in call.result()
                         if records.domain_key(d) in ours]
            else:
                late.append((call, group))
        return done, late

    def _slow(self, late: list) -> list:
        """Those of the ``late`` (call, group) whose guests' monitors are
        all free or only briefly busy: libvirt is slow, not stuck on a
        QEMU. None of them when libvirt does not say in time.
        """
        late = [(call, group) for call, group in late if call is not None]
        domains = [d for _, group in late for d in group]
        try:
            busy = self.busy(domains, min(CONTROL_WAIT,
                                           bounded.left(self.deadline)))
        except exception.HypervisorNotAnswering:
            return []
        held = {records.domain_key(d) for d, seconds in zip(domains, busy)
                if seconds is not None and seconds >= stuck.BRIEF_BUSY}
        return [(call, group) for call, group in late
                if not any(records.domain_key(d) in held for d in group)]

    def _spares(self, groups: list) -> list:
        """[(_Spare or None, the groups it reads)]: new connections, four
        groups each (set aside, to be closed once no call is stuck on
        them). Never this poll's own: the places libvirtd serves of it are
        kept for the controlInfo() and XML reads that follow, which calls
        slow on a loaded host or stuck in their turn would hold up. An
        embedded driver has no such limit: its own connection. None: a
        connection that did not open in time.
        """
        if self.connections.embedded:
            return [(_Spare(self.conn, None), groups)]
        shares = []
        per = connection.CLIENT_REQUESTS - 1
        wanted = [groups[i:i + per] for i in range(0, len(groups), per)]
        opening = [self.connections.start(self._open_spare) for _ in wanted]
        wait = min(ALIVE_OPEN_WAIT, bounded.kept_back(self.deadline,
                                               SINGLE_WAIT))
        end = time.monotonic() + wait
        for call, share in zip(opening, wanted):
            if self.connections.waited(call, end - time.monotonic()):
                spare = call.result()
                self.connections.retire(spare.conn)
                shares.append((spare, share))
                if self.follow is None:
                    self.follow = spare
            else:
                shares.append((None, share))
        return shares

    def _open_spare(self) -> '_Spare':
        """A new connection and its running domains (a domain is bound to
        the connection that found it).
        """
        conn = self.connections.open()
        return _Spare(conn, conn.listAllDomains(
            api.VIR_CONNECT_LIST_DOMAINS_ACTIVE))

    def alive(self) -> bool:
        """Whether libvirtd answers a call that reaches no guest: on the
        follow-up connection (_follow_up), unless a call is stuck on it
        too (see Connections.make_room), then on a new one. An embedded driver
        has no daemon to queue or lose replies: its own connection.
        """
        conn, _ = self.follow_up([])
        if self.connections.embedded or not self.connections.stuck_calls(conn):
            ask, wait = conn.getLibVersion, ALIVE_WAIT
        else:
            conn, wait = None, ALIVE_OPEN_WAIT

            def ask():
                fresh = self.connections.open()
                try:
                    return fresh.getLibVersion()
                finally:
                    fresh.close()
        try:
            self.connections.run_bounded('getLibVersion()', ask, min(
                wait, bounded.left(self.deadline)), conn=conn)
            return True
        except (exception.NovaException, api.Error):
            return False


class _Spare:
    """A connection a poll reads on, and its domains by key (None: the
    poll's own connection, whose domains the poll has).
    """

    __slots__ = ('conn', 'by_key')

    def __init__(self, conn, domains):
        self.conn = conn
        self.by_key = (None if domains is None else
                       {records.domain_key(d): d for d in domains})

    def mine(self, domains: list) -> list:
        """This connection's domains of ``domains`` (those still here)."""
        if self.by_key is None:
            return domains
        return [d for d in map(self.by_key.get,
                               map(records.domain_key, domains))
                if d is not None]
