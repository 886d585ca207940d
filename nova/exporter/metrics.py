"""Metric families from one poll of MemoryStatsCollector, for Prometheus.

Names are those of the most used libvirt exporter, so existing dashboards
work (``libvirt_domain_memory_stats_*_bytes``, ``*_fault_total``,
``used_percent``, ``last_update_timestamp_seconds``, ``libvirt_up``); ours
add the statistics period, a state set saying why figures are missing, and
the scrape's duration. Every series has the label ``domain`` (the libvirt
name). A figure libvirt did not return is absent, never 0; a guest that is
not running has only its state. Building families only: no HTTP, no
libvirt.
"""

import platform

from prometheus_client import core
from prometheus_client.samples import Sample

from nova.virt.libvirt import guest_state

PREFIX = 'libvirt_domain_memory_stats_'
LABELS = ('domain',)

# (metric name after PREFIX, virDomainMemoryStats key (KiB), help)
BYTES = (
    ('current_balloon_bytes', 'actual',
     'Current balloon size: the memory the guest may use, in bytes.'),
    ('maximum_bytes', 'maximum',
     'Maximum memory of the domain, in bytes.'),
    ('swap_in_bytes', 'swap_in',
     'Memory swapped in by the guest since it booted, in bytes: a '
     'cumulative count (take its rate), reset when the guest boots.'),
    ('swap_out_bytes', 'swap_out',
     'Memory swapped out by the guest since it booted, in bytes: a '
     'cumulative count (take its rate), reset when the guest boots.'),
    ('unused_bytes', 'unused',
     'Memory the guest leaves entirely unused, in bytes.'),
    ('available_bytes', 'available',
     'Memory the guest sees as total, in bytes.'),
    ('usable_bytes', 'usable',
     'Memory the guest could use without swapping, in bytes.'),
    ('rss_bytes', 'rss',
     "Resident memory of the guest's QEMU process on the host, in bytes."),
    ('disk_caches_bytes', 'disk_caches',
     'Memory the guest could reclaim from its disk caches, in bytes.'),
)
# (metric name after PREFIX without _total, key, help)
COUNTERS = (
    ('major_fault', 'major_fault',
     'Page faults in the guest that needed disk I/O.'),
    ('minor_fault', 'minor_fault',
     'Page faults in the guest served without disk I/O.'),
    ('hugetlb_pgalloc', 'hugetlb_pgalloc',
     'Huge pages the guest allocated successfully.'),
    ('hugetlb_pgfail', 'hugetlb_pgfail',
     'Huge page allocations that failed in the guest.'),
)


INFO_LABELS = ('domain', 'instance_name', 'instance_id', 'flavor_name',
               'user_name', 'user_id', 'project_name', 'project_id')


def _info_labels(row) -> dict:
    meta = row.metadata
    flavor, owner = meta.flavor, meta.owner
    values = (row.name, meta.name, row.uuid, flavor and flavor.name,
              owner and owner.username, owner and owner.userid,
              owner and owner.projectname, owner and owner.projectid)
    return {label: value or '' for label, value in zip(INFO_LABELS, values)}


class GuestFamily(core.Metric):
    """A family of per-guest samples of one name, kept as two columns
    (``label_sets``, ``values``) rather than a Sample each.

    At 4,096 guests a poll made 131,000 Samples: namedtuples, which the
    garbage collector tracks (it untracks plain tuples only), so that it
    walked them all at nearly every poll (170 ms), and each was unpacked
    and checked again by the encoder (tools/bench/scale.py). The columns
    hold dicts of strings and numbers, which it does not track, and the
    encoder reads them as they are (``columns()``). ``samples`` makes the
    Samples when read (prometheus_client's encoders, tests); nothing may
    append to it.
    """

    def __init__(self, name: str, documentation: str, typ: str,
                 sample_name: str | None = None):
        self.label_sets: list[dict] = []
        self.values: list = []
        self.sample_name = sample_name or name
        super().__init__(name, documentation, typ)

    def columns(self) -> tuple:
        """(sample name, label sets, values)."""
        return self.sample_name, self.label_sets, self.values

    @property
    def samples(self) -> list:
        return [Sample(self.sample_name, labels, value)
                for labels, value in zip(self.label_sets, self.values)]

    @samples.setter
    def samples(self, value) -> None:
        # core.Metric.__init__ sets []; anything else would be lost
        if value:
            raise TypeError('GuestFamily samples are its columns: add()')

    def add(self, labels: dict, value) -> None:
        self.label_sets.append(labels)
        self.values.append(value)


def _gauge(name: str, documentation: str) -> GuestFamily:
    return GuestFamily(name, documentation, 'gauge')


_STATES = sorted(guest_state.STATES)


class _Kept:
    """What a guest's series reuse from one scrape to the next: its label
    set (one dict for all its figures), its state set's label sets and
    values while its state holds, its info label set while its metadata
    is the same object (the collector's cache keeps it until the XML is
    read again). The encoder writes a label set it has seen once.
    """

    __slots__ = ('labels', 'state', 'state_labels', 'state_values',
                 'metadata', 'info_labels')

    def __init__(self, row):
        self.labels = {'domain': row.name}
        self.state = self.metadata = self.info_labels = None
        self.state_labels = self.state_values = ()

    def states(self, name: str, current: str) -> None:
        if current != self.state:
            if not self.state_labels:
                self.state_labels = tuple(
                    {'domain': self.labels['domain'], name: s}
                    for s in _STATES)
            self.state_values = tuple(1 if s == current else 0
                                      for s in _STATES)
            self.state = current

    def info(self, row) -> dict:
        if self.metadata is not row.metadata or self.info_labels is None:
            self.metadata = row.metadata
            self.info_labels = _info_labels(row)
        return self.info_labels


def families(rows, kept: dict | None = None) -> list:
    """The per-guest metric families of one poll's ``rows``.

    A guest's samples share one label set, and its state set and info
    label sets are built only when its state or metadata changes: given
    ``kept`` (a dict owned by the caller, the same at every scrape, by
    guest name), they are reused from the previous scrape, and ``kept``
    then holds this scrape's guests only. Each family keeps its samples
    as columns (GuestFamily).
    """
    made = _Families()
    previous = kept if kept is not None else {}
    current = {}
    for row in rows:
        mine = previous.get(row.name)
        if mine is None:
            mine = _Kept(row)
        current[row.name] = mine
        labels = mine.labels
        if row.metadata is not None:
            made.info.add(mine.info(row), 1)
        mine.states(made.state.name, row.stats_state)
        made.state.label_sets.extend(mine.state_labels)
        made.state.values.extend(mine.state_values)
        made.periods_of(row, labels)
        if row.raw:
            made.figures_of(row.raw, labels)
    if kept is not None:
        kept.clear()
        kept.update(current)
    return made.all()


class _Families:
    """The families of one scrape, filled a guest at a time."""

    def __init__(self):
        self.bytes = [(_gauge(PREFIX + name, text), key)
                      for name, key, text in BYTES]
        self.counters = [
            (GuestFamily(PREFIX + name, text, 'counter',
                         PREFIX + name + '_total'), key)
            for name, key, text in COUNTERS]
        self.used = _gauge(PREFIX + 'used_percent',
                           'Memory the guest uses, (available - usable) / '
                           'available * 100, in percent.')
        self.updated = _gauge(PREFIX + 'last_update_timestamp_seconds',
                              "Time of the guest's last statistics report, "
                              'in seconds since the epoch.')
        self.period = _gauge(PREFIX + 'period_seconds',
                             "The guest's memory statistics period, in "
                             'seconds (absent: the balloon has none or is '
                             'disabled).')
        self.wanted = _gauge(PREFIX + 'wanted_period_seconds',
                             'The statistics period the guest should have, '
                             'in seconds (0: none): its flavor\'s '
                             'hw:mem_stats_period_seconds, else its '
                             "image's hw_mem_stats_period_seconds, else "
                             '[libvirt] mem_stats_period_seconds; a running '
                             'guest whose period differs has drifted '
                             '(absent: not running, a balloon that cannot '
                             'take one, or metadata asking for a period it '
                             'cannot have).')
        self.reporting = _gauge(
            PREFIX + 'free_page_reporting_enabled',
            "Whether the guest's balloon reports the pages it frees to the "
            'host (1) or not (0); absent without a virtio balloon.')
        self.wanted_reporting = _gauge(
            PREFIX + 'wanted_free_page_reporting_enabled',
            'Whether the guest should report freed pages (1) or not (0): '
            "its flavor's hw:mem_free_page_reporting, else off for "
            'hugepage, realtime and dedicated-CPU flavors, else its image\'s '
            'hw_mem_free_page_reporting, else [libvirt] '
            'mem_free_page_reporting; it changes when the guest is '
            'recreated (absent: not running, no virtio balloon, or '
            'metadata asking for what it cannot have).')
        self.state = GuestFamily(
            PREFIX + 'state',
            "Why a guest has or lacks fresh figures (nova-libvirt's "
            'stats_state): ' + ', '.join(guest_state.STATES) + '.',
            'stateset')
        self.info = _gauge(
            'libvirt_domain_openstack_info',
            "The guest's OpenStack identity, from Nova's instance metadata "
            '(always 1).')
        # (family, libvirt key, factor)
        self.figures = [(f, key, 1024) for f, key in self.bytes]
        self.figures += [(f, key, 1) for f, key in self.counters]

    def periods_of(self, row, labels: dict) -> None:
        if row.period is not None:
            self.period.add(labels, row.period)
        if row.wanted_period is not None:
            self.wanted.add(labels, row.wanted_period)
        if row.free_page_reporting is not None:
            self.reporting.add(labels, int(row.free_page_reporting))
        if row.wanted_free_page_reporting is not None:
            self.wanted_reporting.add(
                labels, int(row.wanted_free_page_reporting))

    def figures_of(self, raw: dict, labels: dict) -> None:
        for family, key, factor in self.figures:
            value = raw.get(key)
            if value is not None:
                family.label_sets.append(labels)
                family.values.append(value * factor)
        available, usable = raw.get('available'), raw.get('usable')
        # never a negative or above-100 share: figures that contradict
        # each other give the state inconsistent instead
        if available and usable is not None and 0 <= usable <= available:
            self.used.add(labels, (available - usable) / available * 100)
        if raw.get('last_update'):
            self.updated.add(labels, raw['last_update'])

    def all(self) -> list:
        return ([family for family, _ in self.bytes] +
                [family for family, _ in self.counters] +
                [self.used, self.updated, self.period, self.wanted,
                 self.reporting, self.wanted_reporting,
                 self.state, self.info])


def build_info(version: str) -> core.GaugeMetricFamily:
    """``nova_libvirt_exporter_build_info``: 1, labelled by the exporter's
    version and the Python that runs it, as every exporter has a
    ``*_build_info``.
    """
    family = core.GaugeMetricFamily(
        'nova_libvirt_exporter_build_info',
        'A metric with a constant 1, labelled by the version of '
        'nova-libvirt-exporter and of the Python it runs on.',
        labels=('version', 'pythonversion'))
    family.add_metric((version, platform.python_version()), 1)
    return family


def host_families(up: bool, duration: float) -> list:
    """libvirt_up and the scrape's duration."""
    libvirt_up = core.GaugeMetricFamily(
        'libvirt_up', '1 when libvirt answered this scrape, else 0.',
        value=1 if up else 0)
    scrape = core.GaugeMetricFamily(
        'libvirt_memory_stats_scrape_duration_seconds',
        "Time this scrape's poll of libvirt and its families took, in "
        'seconds.', value=duration)
    return [libvirt_up, scrape]
