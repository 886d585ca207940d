"""Tests for nova.utils: typed values of flavors and images, and
misspellings.
"""

from nova import test
from nova import utils

INT = {'type': int, 'min': None, 'max': 100}


class ParseValueTest(test.TestCase):

    def test_integers(self):
        for raw, want in (('5', 5), (' 5 ', 5), ('-3', -3), (7, 7),
                          ('0', 0), ('100', 100)):
            self.assertEqual(want, utils.parse_value(INT, raw), raw)
        for raw in ('', '5.0', '+1', '1_000', '--1', '1-', '٣', True,
                    '101', 'five', None):
            self.assertRaises(ValueError, utils.parse_value, INT, raw)

    def test_booleans_and_text(self):
        spec = {'type': bool}
        for raw, want in (('yes', True), ('Off', False), ('1', True),
                          (False, False)):
            self.assertEqual(want, utils.parse_value(spec, raw))
        self.assertRaises(ValueError, utils.parse_value, spec, 'maybe')
        enum = {'type': str, 'enum': ('a', 'b')}
        self.assertEqual('a', utils.parse_value(enum, 'a'))
        self.assertRaises(ValueError, utils.parse_value, enum, 'c')

    def test_expected_in_words(self):
        self.assertEqual('an integer of at most 100', utils.expected_value(
            INT))
        self.assertEqual('an integer from 1 to 5 (seconds)',
                         utils.expected_value({'type': int, 'min': 1,
                                               'max': 5,
                                               'note': 'seconds'}))
        self.assertEqual('an integer of at least 0', utils.expected_value(
            {'type': int, 'min': 0}))
        self.assertEqual('one of a, b', utils.expected_value(
            {'type': str, 'enum': ('a', 'b')}))


class NearMissTest(test.TestCase):

    def test_only_sure_misspellings(self):
        known = ('hw_mem_stats_period_seconds',)
        self.assertEqual(known[0], utils.near_miss(
            'hw:mem_stats_period_seconds', known))
        self.assertEqual(known[0], utils.near_miss(
            'hw_mem_stats_period_second', known))
        for name in (known[0], 'hw_mem_stats_period', 'os_distro',
                     'hw_machine_type'):
            self.assertIsNone(utils.near_miss(name, known), name)
