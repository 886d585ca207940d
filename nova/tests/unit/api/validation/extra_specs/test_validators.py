"""Tests for the flavor extra spec validators: the registered one, its
one-line refusals, and misspellings of it.
"""

from nova import exception
from nova import test
from nova.api.validation.extra_specs import base
from nova.api.validation.extra_specs import hw
from nova.api.validation.extra_specs import validators


class RegistryTest(test.TestCase):

    def test_described_as_nova_describes_its_hw_specs(self):
        found = validators.registry()['hw:mem_stats_period_seconds']
        self.assertIs(hw.MEM_STATS_PERIOD, found)
        self.assertIs(int, found.value['type'])
        self.assertEqual(2147483647, found.value['max'])
        self.assertIn('seconds', found.description)
        self.assertEqual('an integer of at most 2147483647 (0 or below '
                         'disables statistics)', found.expected)

    def test_unsupported_type_refused_at_definition(self):
        self.assertRaises(ValueError, base.ExtraSpecValidator, name='x:y',
                          description='', value={'type': float})


class ValidateTest(test.TestCase):

    def test_known_values(self):
        for value in ('10', '0', '-1', ' 5 ', 5):
            validators.validate('hw:mem_stats_period_seconds', value)
        for value, shown in (('ten', "'ten'"), ('1e3', "'1e3'"),
                             ('', "''"), ('2147483648', "'2147483648'"),
                             (True, 'True')):
            e = self.assertRaises(exception.ValidationError,
                                  validators.validate,
                                  'hw:mem_stats_period_seconds', value)
            self.assertEqual(
                f'Flavor extra spec hw:mem_stats_period_seconds={shown} is '
                'not valid: expected an integer of at most 2147483647 (0 or '
                'below disables statistics).', str(e))

    def test_unknown_carried_but_misspellings_refused(self):
        for name in ('hw:cpu_thread_policy', 'hw:numa_nodes',
                     'quota:cpu_quota', 'hw:mem_stats_period', 'custom'):
            validators.validate(name, 'anything')
        # Nova's own specs that decide free page reporting are read, so
        # checked as Nova checks them
        for name, good in (('hw:cpu_policy', 'dedicated'),
                           ('hw:mem_page_size', '2MB'),
                           ('hw:cpu_realtime', 'yes'),
                           ('hw:mem_free_page_reporting', 'false')):
            validators.validate(name, good)
            self.assertRaises(exception.ValidationError,
                              validators.validate, name, 'anything')
        for name in ('hw:mem_stats_period_second', 'hw_mem_stats_period_'
                     'seconds', 'hw:mem_stat_period_seconds'):
            e = self.assertRaises(exception.ValidationError,
                                  validators.validate, name, '5')
            self.assertIn('did you mean hw:mem_stats_period_seconds?',
                          str(e))
        self.assertEqual({'a': '1', 'hw:mem_stats_period_seconds': '2'},
                         validators.check(
                             {'a': '1', 'hw:mem_stats_period_seconds': '2'}))
