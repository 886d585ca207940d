"""nova.cmd.exporter assembles a service that only reads: its libvirt
connection is opened read-only whatever the configuration says.
"""

import os

import fixtures
import libvirt

from nova import config
from nova import exception
from nova import test
from nova.cmd import exporter as exporter_cmd
import nova.conf
from nova.exporter import service
from nova.virt.libvirt import driver as libvirt_driver

CONF = nova.conf.CONF


class ReadOnlyTest(test.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.opened = []
        real = libvirt.openReadOnly

        def read_only(uri):
            self.opened.append(uri)
            return real(uri)
        self.useFixture(fixtures.MockPatchObject(libvirt, 'openReadOnly',
                                                 read_only))
        self.useFixture(fixtures.MockPatchObject(
            libvirt, 'open', side_effect=AssertionError(
                'the exporter opened libvirt read-write')))

    def _load(self, text: str):
        path = os.path.join(self.tmp, 'nova.conf')
        with open(path, 'w') as f:
            f.write('[libvirt]\nconnection_uri = test:///default\n' + text)
        config.parse_args(['--config-file', path], prog=service.PROG)

    def test_whatever_the_configuration_says(self):
        for text in ('', '[exporter]\napply_stats_period = true\n',
                     '[exporter]\nreconcile_period = true\n'):
            self.opened.clear()
            self._load(text)
            svc = exporter_cmd.build(CONF)
            rows = svc.collector.collect()
            self.assertEqual(['test'], [r.name for r in rows])
            self.assertEqual(['test:///default'], self.opened)

    def test_a_driver_that_could_write_is_refused(self):
        self._load('')
        self.assertRaises(ValueError, exporter_cmd.build, CONF,
                          libvirt_driver.LibvirtDriver())

    def test_a_read_only_host_cannot_change_a_guest(self):
        self._load('')
        host = libvirt_driver.LibvirtDriver(read_only=True).host
        self.addCleanup(host.close)
        e = self.assertRaises(
            exception.LibvirtCallFailed,
            host.get_guest('test').set_memory_stats_period, 9, live=True,
            config=False)
        self.assertIn('read only access prevents', str(e))
