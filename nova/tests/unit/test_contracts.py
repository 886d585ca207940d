"""What scripts and dashboards read is a contract: the keys of memstats'
JSON, the columns of its CSV, the exporter's metric names and its states.

Each is pinned here as it is. A change fails this test: make it only with
a release note whose ``upgrade`` section says what a reader must change,
then update the pin (and, for a renamed or removed name, RETIRED). Every
retired name must appear in such a section.
"""

import dataclasses
import glob
import os

import yaml

from nova import test
from nova.cmd import output
from nova.exporter import metrics
from nova.tests.fixtures import exporter as fakeexporter
from nova.virt.libvirt import config as vconfig
from nova.virt.libvirt import guest_state
from nova.virt.libvirt import memstats

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))

MEMSTATS_KEYS = (
    'name', 'uuid', 'stats_state', 'reason', 'display_name', 'project',
    'period', 'wanted_period', 'used_mib', 'usable_mib', 'available_mib',
    'unused_mib', 'actual_mib', 'maximum_mib', 'disk_caches_mib', 'rss_mib',
    'swap_in_mib', 'swap_out_mib', 'major_fault', 'minor_fault',
    'hugetlb_pgalloc', 'hugetlb_pgfail', 'last_update',
    # added at the end, so that CSV columns keep their places
    'free_page_reporting', 'wanted_free_page_reporting')

METRIC_FAMILIES = (
    'libvirt_domain_memory_stats_available_bytes',
    'libvirt_domain_memory_stats_current_balloon_bytes',
    'libvirt_domain_memory_stats_disk_caches_bytes',
    'libvirt_domain_memory_stats_free_page_reporting_enabled',
    'libvirt_domain_memory_stats_hugetlb_pgalloc',
    'libvirt_domain_memory_stats_hugetlb_pgfail',
    'libvirt_domain_memory_stats_last_update_timestamp_seconds',
    'libvirt_domain_memory_stats_major_fault',
    'libvirt_domain_memory_stats_maximum_bytes',
    'libvirt_domain_memory_stats_minor_fault',
    'libvirt_domain_memory_stats_period_seconds',
    'libvirt_domain_memory_stats_rss_bytes',
    'libvirt_domain_memory_stats_state',
    'libvirt_domain_memory_stats_swap_in_bytes',
    'libvirt_domain_memory_stats_swap_out_bytes',
    'libvirt_domain_memory_stats_unused_bytes',
    'libvirt_domain_memory_stats_usable_bytes',
    'libvirt_domain_memory_stats_used_percent',
    'libvirt_domain_memory_stats_wanted_free_page_reporting_enabled',
    'libvirt_domain_memory_stats_wanted_period_seconds',
    'libvirt_domain_openstack_info',
    'libvirt_memory_stats_scrape_duration_seconds',
    'libvirt_up',
    'nova_libvirt_exporter_build_info')

STATES = ('ok', 'stale', 'paused', 'no-stats-period', 'balloon-disabled',
          'starting', 'no-guest-driver', 'no-guest-figures', 'not-running',
          'unresponsive', 'error', 'not-booted', 'inconsistent')

#: names no longer given, each said in a release note's upgrade section
RETIRED = ('memory_usage_mb', 'memory_resident_mb', 'memory_actual_mb',
           'memory_available_mb', 'swap_in_mb', 'swap_out_mb')

CHANGED = ('changed: a reader of it breaks. Say what to do in a release '
           "note's upgrade section, then update this pin")


def _families() -> set:
    """Every family name the exporter can give: a guest with every figure
    and Nova's metadata, the host's families and the build info.
    """
    raw = dict(fakeexporter.RAW, hugetlb_pgalloc=1, hugetlb_pgfail=0)
    row = dataclasses.replace(fakeexporter.make_row('g', 'ok', raw),
                              wanted_period=2, metadata=_metadata(),
                              free_page_reporting=True,
                              wanted_free_page_reporting=False)
    found = metrics.families([row]) + metrics.host_families(True, 0.1) + [
        metrics.build_info('1')]
    return {family.name for family in found}


def _metadata():
    return vconfig.LibvirtConfigGuestMetaNovaInstance(
        name='server', owner=vconfig.LibvirtConfigGuestMetaNovaOwner(
            userid='u', username='user', projectid='p',
            projectname='project'),
        flavor=vconfig.LibvirtConfigGuestMetaNovaFlavor(name='m1'))


class ContractsTest(test.TestCase):

    def test_memstats_json_and_csv_keys(self):
        self.assertEqual(MEMSTATS_KEYS, memstats.FIELDS,
                         f'memstats JSON keys {CHANGED}')
        row = fakeexporter.make_row('g', 'ok', fakeexporter.RAW)
        header = output.format_memstats([row], 'csv').splitlines()[0]
        self.assertEqual(','.join(MEMSTATS_KEYS), header,
                         f'memstats CSV columns {CHANGED}')

    def test_metric_names_and_states(self):
        self.assertEqual(set(METRIC_FAMILIES), _families(),
                         f'metric names {CHANGED}')
        self.assertEqual(STATES, guest_state.STATES,
                         f'states {CHANGED}')

    def test_each_retired_name_has_its_upgrade_note(self):
        upgrades = ''
        for path in glob.glob(os.path.join(ROOT, 'releasenotes', 'notes',
                                           '*.yaml')):
            with open(path) as f:
                upgrades += ' '.join((yaml.safe_load(f) or {}).get(
                    'upgrade', []))
        for name in RETIRED:
            self.assertIn(f'``{name}``', upgrades, name)
            self.assertNotIn(name, MEMSTATS_KEYS + METRIC_FAMILIES)
