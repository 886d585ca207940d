"""Memory statistics of every guest on a host, as telemetry reads them.

``MemoryStatsCollector.collect`` reads all guests' balloon figures with one
libvirt call (``Host.get_memory_stats``), derives the figures Ceilometer's
libvirt inspector meters, in MiB, and gives each guest a ``stats_state``
with a one-line reason an operator can act on wherever a figure is missing
or old. Deciding the state is ``classify``, a pure function. A poll answers
within its timeout whatever one guest or the daemon does: a guest whose
QEMU does not answer is ``unresponsive``, the others keep fresh figures.

The statistics period comes from the domain's live XML, read once per
domain run (keyed by name and domain id) and cached, so a poll costs one
libvirt call whatever the number of guests. libvirt sends no event when a
period changes (``setMemoryStatsPeriod``, from this or another process), so
the cache is checked against the guest's own reports at every poll, for
free: a report that is off the cached period's cadence, or one overdue by
half a period, makes the collector re-read that guest's XML once
(``period_may_have_changed``). A changed period is thus seen at the first
poll after the guest's first report under it, and a healthy guest is never
called ``stale`` on the strength of a period cached before a change. This
module must not import libvirt or read nova.conf.
"""

from collections.abc import Callable
import dataclasses
import os
import time

from nova import exception
from nova.virt.libvirt import config as vconfig
from nova.virt.libvirt import guest_state
from nova.virt.libvirt import stats_period


def _mib(kib):
    return None if kib is None else round(kib / 1024, 2)


def figures(stats: dict) -> dict:
    """Telemetry's figures from virDomainMemoryStats names (KiB).

    memory usage = available - usable where the guest reports usable, else
    available - unused (Ceilometer's libvirt inspector); resident = rss.
    """
    available = stats.get('available')
    usable, unused = stats.get('usable'), stats.get('unused')
    usage = None
    if available is not None:
        if usable is not None:
            usage = available - usable
        elif unused is not None:
            usage = available - unused
    if usage is not None and usage < 0:
        usage = None  # figures that contradict (state inconsistent)
    return {
        'memory_usage_mb': _mib(usage),
        'memory_resident_mb': _mib(stats.get('rss')),
        'memory_actual_mb': _mib(stats.get('actual')),
        'memory_available_mb': _mib(available),
        'swap_in_mb': _mib(stats.get('swap_in')),
        'swap_out_mb': _mib(stats.get('swap_out')),
        # libvirt says 0 until the guest first reports.
        'last_update': stats.get('last_update') or None,
    }


def _figure(name: str):
    """A read-only property: ``figures(raw)[name]``, derived when read."""
    def get(self):
        return figures(self.raw)[name]
    get.__name__ = name
    return property(get, doc=f'{name}, derived from raw (None if absent).')


@dataclasses.dataclass(slots=True)
class GuestMemoryStats:
    """One guest's state, why any figure lacks, and its figures.

    ``raw`` holds libvirt's figures as it gave them (virDomainMemoryStats
    names, KiB); Ceilometer's figures in MiB (``memory_usage_mb`` ...) are
    derived from it when read, so a poll pays only for what its consumer
    reads (the exporter reads ``raw``; ``memstats`` prints the MiB).
    """

    name: str
    uuid: str | None
    stats_state: str
    reason: str
    #: From Nova's <nova:instance> metadata, where the guest has it.
    display_name: str | None = None
    project: str | None = None
    period: int | None = None
    #: The period it should have (stats_period.wanted_period), for a
    #: running guest whose balloon can take one; None where not asked.
    wanted_period: int | None = None
    raw: dict = dataclasses.field(default_factory=dict, repr=False)
    #: The guest's LibvirtConfigGuestMetaNovaInstance, or None.
    metadata: object = dataclasses.field(default=None, repr=False)
    #: Whether its balloon reports freed pages (a virtio balloon's
    #: freePageReporting), None where it has no virtio balloon.
    free_page_reporting: bool | None = None
    #: What its flavor, image or the option asks for
    #: (balloon_policy.free_page_reporting), for a running guest with a
    #: virtio balloon; None where not asked.
    wanted_free_page_reporting: bool | None = None

    memory_usage_mb = _figure('memory_usage_mb')
    memory_resident_mb = _figure('memory_resident_mb')
    memory_actual_mb = _figure('memory_actual_mb')
    memory_available_mb = _figure('memory_available_mb')
    swap_in_mb = _figure('swap_in_mb')
    swap_out_mb = _figure('swap_out_mb')
    last_update = _figure('last_update')

    def as_dict(self) -> dict:
        """FIELDS and their values: every figure libvirt gave, by the
        names SHOWN gives them (sizes in MiB), None where absent.
        """
        found = {name: getattr(self, name) for name in FIELDS[:8]}
        raw = self.raw
        for name, key in SHOWN:
            if key is None:
                found[name] = figures(raw)['memory_usage_mb']
            elif name.endswith('_mib'):
                found[name] = _mib(raw.get(key))
            else:
                found[name] = raw.get(key)
        found['last_update'] = raw.get('last_update') or None
        found['free_page_reporting'] = self.free_page_reporting
        found['wanted_free_page_reporting'] = \
            self.wanted_free_page_reporting
        return found


#: What nova-libvirt shows of libvirt's figures (JSON, CSV, the table's
#: headings in capitals): (name, virDomainMemoryStats key); a ``_mib``
#: name is the KiB figure in MiB. used_mib is telemetry's memory usage,
#: available - usable (else - unused), as Ceilometer meters it.
SHOWN = (('used_mib', None), ('usable_mib', 'usable'),
         ('available_mib', 'available'), ('unused_mib', 'unused'),
         ('actual_mib', 'actual'), ('maximum_mib', 'maximum'),
         ('disk_caches_mib', 'disk_caches'), ('rss_mib', 'rss'),
         ('swap_in_mib', 'swap_in'), ('swap_out_mib', 'swap_out'),
         ('major_fault', 'major_fault'), ('minor_fault', 'minor_fault'),
         ('hugetlb_pgalloc', 'hugetlb_pgalloc'),
         ('hugetlb_pgfail', 'hugetlb_pgfail'))

#: The keys of as_dict(), JSON and CSV, in order.
FIELDS = ('name', 'uuid', 'stats_state', 'reason', 'display_name',
          'project', 'period', 'wanted_period',
          *(name for name, _ in SHOWN), 'last_update',
          'free_page_reporting', 'wanted_free_page_reporting')


class _CachedFacts:
    """What the collector remembers of one domain run: its XML's facts,
    derived once, and when its XML was read.
    """

    __slots__ = ('uuid', 'balloon', 'period', 'metadata', 'display_name',
                 'project', 'seen', 'read_at', 'period_changed_at',
                 'started_at', 'console_log', 'report', 'decided')

    def __init__(self, uuid: str, facts, seen: int, read_at: float):
        self.uuid, self.balloon = uuid, facts.balloon
        self.metadata = metadata = facts.instance
        #: the file its serial console is logged to, where the XML says
        self.console_log = facts.console_log
        #: its last report with guest figures (virDomainMemoryStats names),
        #: kept for a while should its QEMU stop answering
        self.report = None
        #: (policy key, Wanted, Reporting) decided for its metadata
        self.decided = None
        #: The balloon's statistics period, None without one.
        self.period = None if self.balloon is None else self.balloon.period
        if metadata is None:
            self.display_name = self.project = None
        else:
            owner = metadata.owner
            self.display_name = metadata.name
            self.project = owner and (owner.projectname or owner.projectid)
        self.seen = seen        # last_update at the previous poll
        self.read_at = read_at  # when the XML was read
        #: When this run started, where this collector saw it start.
        self.started_at = None
        #: When the period was last changed (epoch seconds), where the XML
        #: says so (nova-libvirt set-period) or this collector saw it.
        change = facts.period_change
        self.period_changed_at = (
            change.changed_at if change is not None and
            change.seconds == (self.period or 0) else None)


def _console(known: '_CachedFacts') -> tuple[str, bool] | None:
    """(the guest's console file, whether it is empty) for a guest that
    never reported, where that tells whether it booted: its console is a
    file this process may read, and its image is not Windows' (which
    writes nothing to a serial console). A stat(), no read.
    """
    path = known.console_log
    image = known.metadata.image if known.metadata is not None else None
    properties = image.properties if image is not None else None
    if path is None or (properties or {}).get('os_type') == 'windows':
        return None
    try:
        return path, os.stat(path).st_size == 0
    except OSError:
        return None


class MemoryStatsCollector:
    """Polls all guests of a Host; keep one to make repeated polls cheap.

    ``timeout`` bounds a whole poll in seconds, libvirt's answer included;
    ``start_grace`` is how long after its start a guest that never
    reported is ``starting`` (guest_state.classify).
    """

    def __init__(self, host, clock: Callable[[], float] = time.time,
                 timeout: float = 5.0, wanted=None, start_grace: float = 0,
                 reporting=None, keep_periods: int = 0,
                 policy_key: Callable[[], object] | None = None):
        self._host = host
        self._clock = clock
        #: metadata -> the stats_period.Wanted of a guest (None: not told)
        self._wanted = wanted
        #: metadata -> the balloon_policy.Reporting of a guest (None: not
        #: told)
        self._reporting = reporting
        #: () -> what ``wanted`` and ``reporting`` read besides metadata
        #: (the options): while it and a guest's metadata stay, their
        #: answers for it are kept (a third of a warm poll's time at
        #: 4,096 guests); None: asked at every poll
        self._policy_key = policy_key
        #: Seconds a whole poll may take (settable, e.g. on reload).
        self.timeout = timeout
        #: Seconds a new guest may take to report (settable).
        self.start_grace = start_grace
        #: Periods an unresponsive guest's last figures are kept after its
        #: last report (settable; 0: not kept).
        self.keep_periods = keep_periods
        # (name, domain id) -> _CachedFacts, for the domains of the last
        # poll. A domain id is new on every start and unique among running
        # domains, so (name, id) names one run of one guest (-1: off).
        self._known: dict = {}
        # name -> domain id at the last poll that asked for it (None: no
        # such guest), and whether a poll of every guest ran: a run this
        # collector did not see before started since.
        self._last_ids: dict = {}
        # When each name was last looked at, and the last poll of every
        # guest: the earliest a run seen starting may have started.
        self._looked_at: dict = {}
        self._full_poll_at: float | None = None

    def forget(self) -> None:
        """Read every guest's XML again at the next poll (after this
        process changed guests, e.g. their period).
        """
        self._known = {}

    def _started_at(self, record) -> float | None:
        """When ``record``'s run started, where known: its QEMU process's
        start (the same for every process that may read it), else, where
        this collector saw it start (absent, off or another run at its
        previous poll), that poll's time: the earliest it may have
        started, so that no guest is called starting for longer than it
        is. None otherwise: a run first seen running is not dated.
        """
        if not record.active:
            return None
        exact = self._host.qemu_started_at(record.name)
        if exact is not None:
            return exact
        if record.name in self._last_ids:
            if self._last_ids[record.name] == record.domain_id:
                return None
            return self._looked_at[record.name]
        return self._full_poll_at

    def _read_facts(self, stale: list, deadline: float, now: float
                    ) -> list:
        """_CachedFacts (or the error reading it) of each (record, last_update,
        previous _CachedFacts or None) in ``stale``, from its XML, all in one
        bounded wait.
        """
        try:
            xmls = self._host.get_xml_descs(
                [record.guest for record, _, _ in stale],
                max(0.5, deadline - time.monotonic()))
        except exception.HypervisorUnavailable as e:
            xmls = dict.fromkeys(range(len(stale)), e)
        found = []
        for index, (record, update, previous) in enumerate(stale):
            xml = xmls[index]
            try:
                if isinstance(xml, Exception):
                    raise xml
                known = _CachedFacts(record.uuid, vconfig.domain_facts(xml),
                               update, now)
            except (exception.NovaException, ValueError) as e:
                # Vanished since the listing, or XML we cannot read.
                found.append(e)
                continue
            if previous is not None and previous.period != known.period:
                # Changed by someone who left no word in the XML (virsh):
                # its reports under the new period start from now.
                known.period_changed_at = max(
                    known.period_changed_at or 0, now)
            elif previous is not None and known.period_changed_at is None:
                known.period_changed_at = previous.period_changed_at
            if previous is not None:
                known.started_at = previous.started_at
                known.report = previous.report
            else:
                known.started_at = self._started_at(record)
            found.append(known)
        return found

    def _row(self, record, known: '_CachedFacts', now: float,
             policy=None) -> GuestMemoryStats:
        """The row of a guest whose XML facts are ``known``; a guest that
        is not running keeps its owner and its defined period, but has no
        figures. A running guest whose balloon can take a period is told
        the period it should have.
        """
        asked, reporting = self._decided(known, policy) \
            if record.active else (None, None)
        state, reason = guest_state.classify(
            record.active, known.balloon, record.stats, now,
            record.monitor_busy, record.suspended, known.period_changed_at,
            known.started_at, self.start_grace,
            stats_period.disabled_remedy(asked) if asked else None,
            _console(known) if record.active and
            not record.stats.get('last_update') else None)
        raw = record.stats if record.active else {}
        if record.monitor_busy is None and record.active and \
                record.stats.get('last_update') and \
                any(key in record.stats for key in guest_state.GUEST_KEYS):
            known.report = dict(record.stats)
        elif state == guest_state.UNRESPONSIVE:
            raw, reason = self._kept(record, known, now, reason)
        wanted = wanted_reporting = has_reporting = None
        virtio = known.balloon is not None and known.balloon.model != 'none'
        if asked is not None and virtio:
            wanted = asked.seconds
        if virtio:
            has_reporting = bool(known.balloon.free_page_reporting)
            if self._reporting is not None and record.active:
                wanted_reporting = None if reporting is None else \
                    reporting.on
        return GuestMemoryStats(
            record.name, known.uuid, state, reason, known.display_name,
            known.project, known.period, wanted, raw, known.metadata,
            has_reporting, wanted_reporting)

    def _decided(self, known: '_CachedFacts', policy) -> tuple:
        """(Wanted, Reporting) of a running guest (None where not told),
        kept on ``known`` while ``policy`` (this poll's policy key; None:
        not kept) holds.
        """
        if policy is not None and known.decided is not None and \
                known.decided[0] == policy:
            return known.decided[1:]
        metadata = known.metadata
        asked = self._wanted(metadata) if self._wanted is not None \
            else None
        reporting = self._reporting(metadata) \
            if self._reporting is not None else None
        if policy is not None:
            known.decided = (policy, asked, reporting)
        return asked, reporting

    def _kept(self, record, known: '_CachedFacts', now: float,
              reason: str) -> tuple[dict, str]:
        """(figures, reason) of a guest whose QEMU does not answer: its
        last report's guest figures and age, kept ``keep_periods`` periods
        after that report, beside what libvirt still gives; after, only
        what libvirt gives.
        """
        report, period = known.report, known.period
        if not report or not period or self.keep_periods <= 0:
            return record.stats, reason
        last = report['last_update']
        until = last + self.keep_periods * period
        if now > until:
            return record.stats, reason
        return {**report, **record.stats, 'last_update': last}, (
            f'{reason} Its last figures, reported {_ago(now - last)}, are '
            f'served until {until - now:.0f}s from now ({self.keep_periods} '
            'periods after that report), then only its state.')

    @staticmethod
    def _unknown_row(record, now: float) -> GuestMemoryStats:
        """The row of an unresponsive guest whose XML was never read."""
        state, reason = guest_state.classify(True, None, record.stats, now,
                                             record.monitor_busy)
        return GuestMemoryStats(record.name, record.uuid, state, reason,
                                raw=record.stats)

    @staticmethod
    def _error_row(record, error) -> GuestMemoryStats:
        """The row of a guest that could not be read."""
        return GuestMemoryStats(record.name, record.uuid, guest_state.ERROR,
                                str(error))

    def collect(self, names: list[str] | None = None
                ) -> list[GuestMemoryStats]:
        """Every guest's figures (or those of ``names``, in that order).

        One pass over libvirt's records: a guest whose XML facts are
        cached, and whose reports still fit them, gets its row at once;
        the XML of the others is read afterwards, in one bounded batch.
        Raises HypervisorUnavailable when libvirt does not answer in time.
        """
        deadline = time.monotonic() + self.timeout
        found = self._host.get_memory_stats(names, timeout=self.timeout)
        now = self._clock()
        known = {}
        policy = self._policy_key() if self._policy_key is not None \
            else None
        rows, stale = self._cached_rows(found, known, now, policy)
        if stale:
            rows += self._read_rows(stale, known, deadline, now, policy)
        self._remember(found, known, names, now)
        if names is None:
            return sorted(rows, key=_by_name)
        order = {name: index for index, name in enumerate(names)}
        return sorted(rows, key=lambda g: order.get(g.name, len(order)))

    def _cached_rows(self, found: list, known: dict, now: float,
                     policy=None) -> tuple[list, list]:
        """(the rows of the records whose XML facts are cached and still
        fit, (record, last_update, previous facts) of those whose XML must
        be read); ``known`` gets the facts used.
        """
        old = self._known
        rows, stale = [], []
        for record in found:
            if record.error is not None:
                rows.append(self._error_row(record, record.error))
                continue
            key = record.key
            update = record.stats.get('last_update') or 0
            entry = old.get(key)
            if record.monitor_busy is not None and entry is not None:
                # Unresponsive: what was last read of its XML (its owner,
                # its period) stays. Never read (a new process), it is
                # read below: libvirt answers XMLDesc() without the QEMU
                # monitor (measured: 1 ms for a stopped QEMU's guest).
                known[key] = entry
                rows.append(self._row(record, entry, now, policy))
                continue
            changed = record.active and entry is not None and (
                guest_state.period_may_have_changed(
                    entry.period, entry.seen, update, entry.read_at, now))
            if entry is None or changed:
                stale.append((record, update, entry))
                continue
            entry.seen = update
            known[key] = entry
            rows.append(self._row(record, entry, now, policy))
        return rows, stale

    def _read_rows(self, stale: list, known: dict, deadline: float,
                   now: float, policy=None) -> list:
        """The rows of ``stale``, their XML read in one bounded batch (the
        rows' ages stay those at the read of the figures).
        """
        rows = []
        facts = self._read_facts(stale, deadline, now)
        for (record, _, _), entry in zip(stale, facts):
            if isinstance(entry, Exception) and (
                    record.monitor_busy is not None):
                rows.append(self._unknown_row(record, now))
            elif isinstance(entry, Exception):
                rows.append(self._error_row(record, entry))
            else:
                known[record.key] = entry
                rows.append(self._row(record, entry, now, policy))
        return rows

    def _remember(self, found: list, known: dict, names, now: float) -> None:
        """What the next poll compares with: the facts, the domain ids and
        when each name was looked at (a partial poll forgets no other).
        """
        ids = {r.name: (r.domain_id if r.error is None else None)
               for r in found}
        looked = dict.fromkeys(ids, now)
        if names is None:
            self._known = known
            self._last_ids = ids
            self._looked_at = looked
            self._full_poll_at = now
            return
        self._known.update(known)
        self._last_ids.update(ids)
        self._looked_at.update(looked)


def _ago(seconds: float) -> str:
    return f'{max(0, seconds):.0f}s ago'


def _by_name(row: GuestMemoryStats) -> str:
    return row.name
