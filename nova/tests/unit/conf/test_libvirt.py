"""Tests for the [libvirt] options and their load-time checks."""

import os

import fixtures
from oslo_config import cfg

from nova import config
from nova import exception
from nova import test
import nova.conf
from nova.conf import libvirt

CONF = nova.conf.CONF


class _LoadTestCase(test.TestCase):
    """Loads a nova.conf of the test's."""

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path

    def _load(self, body):
        path = os.path.join(self.tmp, 'nova.conf')
        with open(path, 'w') as f:
            f.write(body)
        return config.parse_args([], default_config_files=[path])


class MemStatsPeriodOptionTest(_LoadTestCase):

    def test_default(self):
        self.assertEqual(10, CONF.libvirt.mem_stats_period_seconds)

    def test_boundary_and_disabled_values_load(self):
        for value in (2147483647, 1, 0, -1, -2147483648):
            conf = self._load(
                f'[libvirt]\nmem_stats_period_seconds = {value}\n')
            self.assertEqual(value, conf.libvirt.mem_stats_period_seconds)

    def test_above_int_max_refused_at_load(self):
        e = self.assertRaises(
            exception.InvalidConfigValue, self._load,
            '[libvirt]\nmem_stats_period_seconds = 2147483648\n')
        self.assertEqual(
            '[libvirt] mem_stats_period_seconds = 2147483648 (in '
            f'{self.tmp}/nova.conf) is not valid: expected an integer no '
            'greater than 2147483647.', str(e))

    def test_non_integer_refused_at_load(self):
        for bad in ('ten', '1.5', '10s'):
            e = self.assertRaises(
                exception.InvalidConfigValue, self._load,
                f'[libvirt]\nmem_stats_period_seconds = {bad}\n')
            self.assertIn(f'mem_stats_period_seconds = {bad} ', str(e))
            self.assertIn('no greater than 2147483647', str(e))

    def test_set_override_refuses_out_of_range(self):
        self.assertRaises(ValueError, self.flags,
                          mem_stats_period_seconds=2147483648,
                          group='libvirt')
        self.assertRaises(ValueError, self.flags,
                          mem_stats_period_seconds='x', group='libvirt')

    def test_bad_virt_type_refused_at_load(self):
        e = self.assertRaises(exception.InvalidConfigValue, self._load,
                              '[libvirt]\nvirt_type = xen\n')
        self.assertIn('[libvirt] virt_type = xen', str(e))
        self.assertIn('kvm, qemu, lxc', str(e))

    def test_help_mentions_what_operators_need(self):
        opt = {o.dest: o for o in libvirt.libvirt_general_opts}[
            'mem_stats_period_seconds']
        for words in ('Zero or a negative value disables', 'balloon driver',
                      'Windows', 'Possible values', 'Related options',
                      'seconds'):
            self.assertIn(words, opt.help)
        self.assertIsInstance(opt, cfg.IntOpt)
        self.assertEqual(2147483647, opt.type.max)

    def test_virt_type_and_uri_defaults(self):
        self.assertEqual('kvm', CONF.libvirt.virt_type)
        self.assertEqual('', CONF.libvirt.connection_uri)


class ConnectionURIOptionTest(_LoadTestCase):

    def test_uris_of_libvirt_drivers_load(self):
        for uri in ('', 'qemu:///system', 'qemu+ssh://host/system',
                    'qemu:///embed?root=/tmp/x', 'test:///default',
                    'lxc:///system',
                    'qemu+unix:///system?socket=/run/x/libvirt-sock'):
            conf = self._load(f'[libvirt]\nconnection_uri = {uri}\n')
            self.assertEqual(uri, conf.libvirt.connection_uri)

    def test_uri_of_no_driver_refused_at_load(self):
        for uri in ('garbage://', 'qemu', '/run/libvirt/libvirt-sock',
                    'kvm:///system'):
            e = self.assertRaises(
                exception.InvalidConfigValue, self._load,
                f'[libvirt]\nconnection_uri = {uri}\n')
            self.assertIn(f'[libvirt] connection_uri = {uri}', str(e))
            self.assertIn('such as qemu:///system', str(e))
