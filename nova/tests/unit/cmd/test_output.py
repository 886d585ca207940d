"""Tests for the memstats output formats."""

import csv
import io
import json

from nova import test
from nova.cmd import output
from nova.virt.libvirt import memstats

NOW = 1_800_000_000


def _rows():
    return [
        memstats.GuestMemoryStats(
            'web1', 'u-1', 'ok', 'Reported 3s ago; period 10s.', period=10,
            raw={'available': 223631, 'usable': 199024, 'rss': 197530,
                 'actual': 262144, 'swap_in': 0, 'swap_out': 0,
                 'last_update': NOW - 3}),
        memstats.GuestMemoryStats(
            'db1', 'u-2', 'balloon-disabled', 'Guest has no balloon.',
            raw={'rss': 205312}),
    ]


class OutputTest(test.TestCase):

    def test_json(self):
        data = json.loads(output.format_memstats(_rows(), 'json'))
        self.assertEqual(2, len(data))
        self.assertEqual(list(memstats.FIELDS), list(data[0]))
        self.assertEqual(24.03, data[0]['used_mib'])
        self.assertEqual(192.9, data[0]['rss_mib'])
        self.assertEqual(NOW - 3, data[0]['last_update'])
        self.assertIsNone(data[1]['last_update'])
        self.assertIsNone(data[1]['period'])

    def test_csv(self):
        rows = list(csv.DictReader(io.StringIO(
            output.format_memstats(_rows(), 'csv'))))
        self.assertEqual(['web1', 'db1'], [r['name'] for r in rows])
        self.assertEqual('', rows[1]['used_mib'])
        self.assertEqual('200.5', rows[1]['rss_mib'])
        self.assertEqual('balloon-disabled', rows[1]['stats_state'])

    def test_table(self):
        text = output.format_table(_rows(), now=NOW)
        lines = text.splitlines()
        self.assertTrue(lines[0].startswith('NAME'))
        self.assertIn('UPDATED', lines[0])
        self.assertIn('3s ago', lines[1])
        self.assertEqual('    actual_mib 256.0, swap_in_mib 0.0, '
                         'swap_out_mib 0.0', lines[2])
        self.assertEqual('    Reported 3s ago; period 10s.', lines[3])
        self.assertIn('balloon-disabled', lines[4])
        self.assertIn(' - ', lines[4])
        self.assertEqual('    Guest has no balloon.', lines[5])

    def test_every_figure_libvirt_gave_within_100_columns(self):
        row = memstats.GuestMemoryStats(
            'instance-0000001a', 'u-3', 'no-guest-driver', 'Guest never '
            'reported: load virtio_balloon (Linux) or install the virtio '
            'balloon driver (Windows); a guest that just booted reports '
            'within one period.', display_name='Web 1', project='web',
            period=10, wanted_period=5,
            raw={'actual': 262144, 'maximum': 262144, 'unused': 150000,
                 'disk_caches': 2216, 'rss': 197530, 'swap_in': 1,
                 'swap_out': 2, 'major_fault': 3, 'minor_fault': 700,
                 'hugetlb_pgalloc': 4, 'hugetlb_pgfail': 5,
                 'last_update': NOW - 3})
        text = output.format_table([row], now=NOW)
        self.assertLessEqual(max(len(line) for line in text.splitlines()),
                             100, text)
        flat = ' '.join(text.split())
        for name, key in memstats.SHOWN:
            if key in row.raw:
                self.assertIn(name.upper() if name in (
                    'rss_mib',) else name, flat)
        self.assertIn('wanted period 5s', flat)
        self.assertIn('instance Web 1, project web', flat)
        # wide: a column a figure, the same names
        wide = output.format_table([row], now=NOW, wide=True)
        header = wide.splitlines()[0].split()
        for name, _ in memstats.SHOWN:
            self.assertIn(name.upper(), header)
        self.assertEqual(
            [name for name, _ in memstats.SHOWN],
            [f for f in memstats.FIELDS if f in dict(memstats.SHOWN)])
