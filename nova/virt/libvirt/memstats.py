"""Memory statistics of every guest on a host, as telemetry reads them.

``MemoryStatsCollector.collect`` reads all guests' balloon figures with one
libvirt call (``Host.get_memory_stats``), derives the figures Ceilometer's
libvirt inspector meters, in MiB, and gives each guest a ``stats_state``
with a one-line reason an operator can act on wherever a figure is missing
or old. Deciding the state is ``classify``, a pure function.

The statistics period comes from the domain's live XML, read once per
domain run (keyed by UUID and domain id) and cached: later polls cost one
libvirt call whatever the number of guests. A period changed on a running
guest with ``setMemoryStatsPeriod`` is therefore seen after a restart, or by
a new collector. This module must not import libvirt or read nova.conf.
"""

import dataclasses
import time
from collections.abc import Callable

from nova import exception
from nova.virt.libvirt import config as vconfig

OK = 'ok'
STALE = 'stale'
NO_STATS_PERIOD = 'no-stats-period'
BALLOON_DISABLED = 'balloon-disabled'
NO_GUEST_DRIVER = 'no-guest-driver'
NOT_RUNNING = 'not-running'
ERROR = 'error'
STATES = (OK, STALE, NO_STATS_PERIOD, BALLOON_DISABLED, NO_GUEST_DRIVER,
          NOT_RUNNING, ERROR)

# Figures only the guest's balloon driver reports.
GUEST_KEYS = ('unused', 'available', 'usable')


@dataclasses.dataclass(slots=True)
class GuestMemoryStats:
    """One guest's figures (MiB; None where absent) and why any lack."""

    name: str
    uuid: str | None
    stats_state: str
    reason: str
    period: int | None = None
    memory_usage_mb: float | None = None
    memory_resident_mb: float | None = None
    memory_actual_mb: float | None = None
    memory_available_mb: float | None = None
    swap_in_mb: float | None = None
    swap_out_mb: float | None = None
    last_update: int | None = None

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


FIELDS = tuple(f.name for f in dataclasses.fields(GuestMemoryStats))


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


def classify(active: bool, balloon, stats: dict,
             now: float) -> tuple[str, str]:
    """(stats_state, reason) of one guest.

    ``balloon`` is the LibvirtConfigMemoryBalloon of the live XML, or None
    where the domain has no balloon element.
    """
    if not active:
        return NOT_RUNNING, 'Guest is not running: start it to get figures.'
    if balloon is None or balloon.model == 'none':
        what = 'has no memory balloon' if balloon is None else \
            'has its memory balloon disabled (model none)'
        return BALLOON_DISABLED, (
            f'Guest {what}: only host-side figures; set [libvirt] '
            'mem_stats_period_seconds above 0 and recreate it.')
    if balloon.period is None:
        return NO_STATS_PERIOD, (
            'Balloon has no statistics period: guest figures are read once '
            'and never refreshed; set one with "virsh dommemstat NAME '
            '--period N --live --config".')
    last = stats.get('last_update') or 0
    if not last or not any(key in stats for key in GUEST_KEYS):
        return NO_GUEST_DRIVER, (
            'Guest never reported: load virtio_balloon (Linux) or install '
            'the virtio balloon driver (Windows); a guest that just booted '
            'reports within one period.')
    age = max(0, now - last)
    if age > 2 * balloon.period:
        return STALE, (
            f'Last report {age:.0f}s ago, over twice the {balloon.period}s '
            "period: the guest's balloon driver stopped reporting.")
    return OK, f'Reported {age:.0f}s ago; period {balloon.period}s.'


def balloon_of(xml: str):
    """The LibvirtConfigMemoryBalloon of a domain's XML, or None."""
    root = vconfig.parse_xml(xml)
    el = root.find('devices/memballoon')
    if el is None:
        return None
    return vconfig.LibvirtConfigMemoryBalloon().parse_dom(el)


class MemoryStatsCollector:
    """Polls all guests of a Host; keep one to make repeated polls cheap."""

    def __init__(self, host, clock: Callable[[], float] = time.time):
        self._host = host
        self._clock = clock
        # (uuid, domain id) -> balloon, for the domains of the last poll
        self._balloons: dict = {}

    def _balloon(self, record, seen: dict):
        """The guest's balloon, from the cache or its XML; noted in seen."""
        key = (record.uuid, record.guest.domain_id)
        balloon = self._balloons.get(key, self)
        if balloon is self:
            balloon = balloon_of(record.guest.get_xml_desc())
        seen[key] = balloon
        return balloon

    def _one(self, record, now: float, seen: dict) -> GuestMemoryStats:
        if record.error is not None:
            return GuestMemoryStats(record.name, record.uuid, ERROR,
                                    record.error)
        balloon = None
        if record.active:
            try:
                balloon = self._balloon(record, seen)
            except (exception.LibvirtCallFailed,
                    exception.LibvirtConfigParseError) as e:
                # Vanished since the listing, or XML we cannot read.
                return GuestMemoryStats(record.name, record.uuid, ERROR,
                                        str(e))
        state, reason = classify(record.active, balloon, record.stats, now)
        return GuestMemoryStats(
            record.name, record.uuid, state, reason,
            period=None if balloon is None else balloon.period,
            **figures(record.stats))

    def collect(self, names: list[str] | None = None
                ) -> list[GuestMemoryStats]:
        """Every guest's figures (or those of ``names``, in that order)."""
        records = self._host.get_memory_stats(names)
        now = self._clock()
        seen: dict = {}
        found = [self._one(record, now, seen) for record in records]
        if names is None:  # a partial poll must not forget the others
            self._balloons = seen
        else:
            self._balloons.update(seen)
        if names is None:
            return sorted(found, key=lambda g: g.name)
        order = {name: index for index, name in enumerate(names)}
        return sorted(found, key=lambda g: order.get(g.name, len(order)))
