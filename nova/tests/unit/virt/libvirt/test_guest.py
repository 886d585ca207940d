"""Tests for nova.virt.libvirt.guest on libvirt's test driver (a node
file of the test's own, so that no other test sees what one changes)
and, where that driver cannot show a case, on a fake domain.
"""

import os
from unittest import mock

import fixtures
import libvirt

from nova import exception
from nova import test
from nova.tests.fixtures import libvirt as fakelibvirt
from nova.virt.libvirt import guest as libvirt_guest
from nova.virt.libvirt import host as libvirt_host

NS = 'http://example.org/ns/1.0'


class GuestTest(test.TestCase):

    NODE = ("<node><domain type='test'><name>test</name>"
            "<memory>1024</memory><os><type>hvm</type></os></domain>"
            "</node>")

    def setUp(self):
        super().setUp()
        node = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'node.xml')
        with open(node, 'w') as f:
            f.write(self.NODE)
        host = libvirt_host.Host(f'test://{node}')
        self.addCleanup(host.close)
        self.guest = host.get_guest('test')

    def test_identity_and_state(self):
        self.assertEqual('test', self.guest.name)
        self.assertEqual(36, len(self.guest.uuid))
        self.assertTrue(self.guest.is_active())
        self.assertTrue(self.guest.is_persistent())
        self.assertGreater(self.guest.domain_id, 0)

    def test_libvirt_error_names_call_guest_and_keeps_message(self):
        # already running: libvirt refuses to start it again
        e = self.assertRaises(exception.LibvirtCallFailed,
                              self.guest.launch)
        self.assertIn('create()', str(e))
        self.assertIn('test', str(e))
        self.assertIn('already running', str(e))
        self.assertEqual(1, len(str(e).splitlines()))

    def test_metadata_absent_is_none_then_written(self):
        self.assertIsNone(self.guest.get_metadata(NS))
        self.guest.set_metadata('<m seconds="2"/>', 'x', NS)
        self.assertIn('seconds="2"', self.guest.get_metadata(NS))

    def test_xml(self):
        self.assertIn('<name>test</name>', self.guest.get_xml_desc())
        self.assertIn('<name>test</name>',
                      self.guest.get_xml_desc(inactive=True))

    def test_pause_resume(self):
        self.guest.pause()
        self.assertEqual(libvirt.VIR_DOMAIN_PAUSED,
                         self.guest._domain.state()[0])
        self.guest.resume()
        self.assertEqual(libvirt.VIR_DOMAIN_RUNNING,
                         self.guest._domain.state()[0])

    def test_delete_twice_is_not_an_error(self):
        self.guest.delete()
        self.guest.delete()  # gone already
        self.assertRaises(exception.LibvirtCallFailed, self.guest.is_active)

    def test_every_call_goes_through_the_runner(self):
        calls = []

        def runner(what, name, fn, slow):
            calls.append((what, name, slow))
            return fn()
        guest = libvirt_guest.Guest(self.guest._domain, runner)
        guest.is_active()
        guest.get_xml_desc()
        self.assertEqual([('isActive()', 'test', False),
                          ('XMLDesc()', 'test', False)], calls)


class GuestFakeDomainTest(test.TestCase):

    def test_monitor_busy(self):
        domain = fakelibvirt.FakeDomain('g')
        guest = libvirt_guest.Guest(domain)
        self.assertIsNone(guest.monitor_busy())
        with mock.patch.object(domain, 'controlInfo',
                               return_value=[2, 0, 12500]):
            self.assertEqual(12.5, guest.monitor_busy())
        with mock.patch.object(domain, 'controlInfo',
                               side_effect=fakelibvirt.libvirt_error(
                                   libvirt.VIR_ERR_NO_SUPPORT)):
            self.assertIsNone(guest.monitor_busy())  # not known

    def test_period_flags(self):
        domain = mock.Mock()
        domain.name.return_value = 'g'
        guest = libvirt_guest.Guest(domain)
        for live, config, flags in (
                (True, False, libvirt.VIR_DOMAIN_AFFECT_LIVE),
                (False, True, libvirt.VIR_DOMAIN_AFFECT_CONFIG),
                (True, True, libvirt.VIR_DOMAIN_AFFECT_LIVE |
                 libvirt.VIR_DOMAIN_AFFECT_CONFIG)):
            guest.set_memory_stats_period(7, live=live, config=config)
            domain.setMemoryStatsPeriod.assert_called_with(7, flags)
