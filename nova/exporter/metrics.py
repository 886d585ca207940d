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


def _gauge(name: str, documentation: str):
    return core.GaugeMetricFamily(name, documentation, labels=LABELS)


_STATES = sorted(guest_state.STATES)


def _state_samples(name: str, domain: str, current: str) -> tuple:
    """The state set's samples of one guest whose state is ``current``."""
    return tuple(Sample(name, {'domain': domain, name: s},
                        1 if s == current else 0, None) for s in _STATES)


def families(rows, kept: dict | None = None) -> list:
    """The per-guest metric families of one poll's ``rows``.

    Samples are appended directly, one labels dict per guest shared by its
    samples (read-only), rather than through ``add_metric``, which builds a
    dict per sample: at 1,000 guests and 22 series each, that halves the
    cost (tools/bench/exporter_scrape.py).

    A guest's eight state-set samples change only when its state does, and
    were a third of the cost; given ``kept`` (a dict owned by the caller,
    the same at every scrape), they are reused from the previous scrape,
    and ``kept`` then holds this scrape's guests only.
    """
    made = _Families()
    previous = kept or {}
    current_states = {}
    for row in rows:
        labels = {'domain': row.name}
        made.info_of(row)
        current_states[(row.name, row.stats_state)] = made.state_of(
            row, previous)
        made.periods_of(row, labels)
        if row.raw:
            made.figures_of(row.raw, labels)
    if kept is not None:
        kept.clear()
        kept.update(current_states)
    return made.all()


class _Families:
    """The families of one scrape, filled a guest at a time."""

    def __init__(self):
        self.bytes = [(_gauge(PREFIX + name, text), key)
                      for name, key, text in BYTES]
        self.counters = [
            (core.CounterMetricFamily(PREFIX + name, text, labels=LABELS),
             key) for name, key, text in COUNTERS]
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
        self.state = core.StateSetMetricFamily(
            PREFIX + 'state',
            "Why a guest has or lacks fresh figures (nova-libvirt's "
            'stats_state): ' + ', '.join(guest_state.STATES) + '.',
            labels=LABELS)
        self.info = core.GaugeMetricFamily(
            'libvirt_domain_openstack_info',
            "The guest's OpenStack identity, from Nova's instance metadata "
            '(always 1).', labels=INFO_LABELS)
        # (samples list, sample name, libvirt key, factor)
        self.figures = [(f.samples, f.name, key, 1024)
                        for f, key in self.bytes]
        self.figures += [(f.samples, f.name + '_total', key, 1)
                         for f, key in self.counters]

    def info_of(self, row) -> None:
        if row.metadata is not None:
            self.info.samples.append(Sample(self.info.name,
                                            _info_labels(row), 1, None))

    def state_of(self, row, previous: dict) -> tuple:
        """Add the guest's state-set samples (kept ones if its state
        held); those samples.
        """
        samples = previous.get((row.name, row.stats_state))
        if samples is None:
            samples = _state_samples(self.state.name, row.name,
                                     row.stats_state)
        self.state.samples.extend(samples)
        return samples

    def periods_of(self, row, labels: dict) -> None:
        if row.period is not None:
            self.period.samples.append(Sample(self.period.name, labels,
                                              row.period, None))
        if row.wanted_period is not None:
            self.wanted.samples.append(Sample(self.wanted.name, labels,
                                              row.wanted_period, None))
        if row.free_page_reporting is not None:
            self.reporting.samples.append(Sample(
                self.reporting.name, labels,
                int(row.free_page_reporting), None))
        if row.wanted_free_page_reporting is not None:
            self.wanted_reporting.samples.append(Sample(
                self.wanted_reporting.name, labels,
                int(row.wanted_free_page_reporting), None))

    def figures_of(self, raw: dict, labels: dict) -> None:
        for samples, sample_name, key, factor in self.figures:
            value = raw.get(key)
            if value is not None:
                samples.append(Sample(sample_name, labels, value * factor))
        available, usable = raw.get('available'), raw.get('usable')
        # never a negative or above-100 share: figures that contradict
        # each other give the state inconsistent instead
        if available and usable is not None and 0 <= usable <= available:
            self.used.samples.append(Sample(
                self.used.name, labels,
                (available - usable) / available * 100, None))
        if raw.get('last_update'):
            self.updated.samples.append(Sample(
                self.updated.name, labels, raw['last_update'], None))

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
