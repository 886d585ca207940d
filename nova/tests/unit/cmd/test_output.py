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
        self.assertEqual(24.03, data[0]['memory_usage_mb'])
        self.assertEqual(NOW - 3, data[0]['last_update'])
        self.assertIsNone(data[1]['last_update'])
        self.assertIsNone(data[1]['period'])

    def test_csv(self):
        rows = list(csv.DictReader(io.StringIO(
            output.format_memstats(_rows(), 'csv'))))
        self.assertEqual(['web1', 'db1'], [r['name'] for r in rows])
        self.assertEqual('', rows[1]['memory_usage_mb'])
        self.assertEqual('balloon-disabled', rows[1]['stats_state'])

    def test_table(self):
        text = output.format_table(_rows(), now=NOW)
        lines = text.splitlines()
        self.assertTrue(lines[0].startswith('NAME'))
        self.assertIn('UPDATED', lines[0])
        self.assertIn('3s ago', lines[1])
        self.assertEqual('    Reported 3s ago; period 10s.', lines[2])
        self.assertIn('balloon-disabled', lines[3])
        self.assertIn(' - ', lines[3])
        self.assertEqual('    Guest has no balloon.', lines[4])

    def test_table_empty(self):
        self.assertEqual('No guests.\n', output.format_table([]))
