"""What a statistics poll gives: a record per guest, and the keys and
helpers it is built with.

``StatsRecord`` is one domain's balloon figures (virDomainMemoryStats'
names), its state and whether its QEMU monitor was busy. ``domain_key``
(name, domain id) names one run of one guest, the one key the poll, the
stuck-guest registry and the collector share. ``select`` picks named
domains from one listing; ``per_domain_stats`` reads domains one by one
where a driver lacks the bulk call. It must not read nova.conf.
"""

from nova import exception
from nova import hints
from nova.virt.libvirt import api
from nova.virt.libvirt import guest as libvirt_guest

# libvirt domain states in which QEMU runs.
ACTIVE_STATES = frozenset((
    api.VIR_DOMAIN_RUNNING, api.VIR_DOMAIN_BLOCKED,
    api.VIR_DOMAIN_PAUSED, api.VIR_DOMAIN_SHUTDOWN,
    api.VIR_DOMAIN_PMSUSPENDED))


SUSPENDED = {api.VIR_DOMAIN_PAUSED: 'paused',
              api.VIR_DOMAIN_PMSUSPENDED: 'pmsuspended'}


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
        statistics timer does not run in either.
        """
        return SUSPENDED.get(self.state)

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

    @property
    def key(self) -> tuple[str, int]:
        """(name, domain id): one run of one guest (domain_key's)."""
        return self.name, self.domain_id

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


def domain_key(domain) -> tuple[str, int]:
    """(name, id): one run of one guest (ids are new on every start)."""
    return domain.name(), domain.ID()


def select(domains: list, names: list[str] | None) -> tuple[list, list]:
    """(the domains named ``names``, in that order, and the names that
    match none); every domain when ``names`` is None. One listing,
    matched here, however many names.
    """
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


def figures_skipped(record: dict) -> bool:
    """Whether libvirt skipped a running guest's balloon query.

    QEMU's driver always adds the QEMU process's ``rss`` when it queries
    the balloon; a record with ``balloon.current`` but no ``balloon.rss``
    is one whose job was busy (the NOWAIT call skipped it). Drivers that
    give no balloon figures at all (test:///default) are not skipped ones.
    """
    return 'balloon.current' in record and 'balloon.rss' not in record


def missing(name: str, uri: str) -> StatsRecord:
    return StatsRecord(None, name, None, False, {},
                       str(exception.InstanceNotFound(
                           name=name, uri=uri,
                           command=hints.command('memstats'))))


def per_domain_stats(domains: list, names: list[str] | None,
                     uri: str) -> list[StatsRecord]:
    """Where the bulk call is unsupported: two calls a domain, of
    ``domains`` (a listing) or those named ``names``; the caller bounds
    the whole.
    """
    domains, absent = select(domains, names)
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
        found.append(StatsRecord(guest, guest.name, guest.uuid, active,
                                 stats))
    return found + [missing(name, uri) for name in absent]
