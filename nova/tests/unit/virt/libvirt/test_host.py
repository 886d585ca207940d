"""Tests for nova.virt.libvirt.host on libvirt's test:///default driver,
and its bounds on fakes of libvirt (nova/tests/fixtures/libvirt.py).

test:///default answers with canned figures whatever a domain's XML says:
these tests prove the plumbing, never the feature (the functional tests
do that on real QEMU). Bounds are checked by what a call waited for in
vain (WaitSpy), never by the wall clock.
"""

import os
import threading

import fixtures
import libvirt

from nova import exception
from nova import test
from nova.tests.fixtures import libvirt as fakelibvirt
from nova.tests.fixtures.libvirt import FakeDomain
from nova.virt.libvirt import connection
from nova.virt.libvirt import embed
from nova.virt.libvirt import host as libvirt_host


class HostTest(test.TestCase):

    def setUp(self):
        super().setUp()
        self.host = libvirt_host.Host('test:///default')
        self.addCleanup(self.host.close)

    def test_version(self):
        self.assertGreaterEqual(self.host.get_version(), (9, 0, 0))
        self.assertTrue(self.host.has_min_version((1, 0, 0)))
        self.assertFalse(self.host.has_min_version((999, 0, 0)))

    def test_bulk_stats_one_record_per_domain(self):
        records = self.host.get_memory_stats()
        self.assertEqual(['test'], [r.name for r in records])
        self.assertTrue(records[0].active)
        self.assertIsNone(records[0].error)
        self.assertEqual(36, len(records[0].uuid))

    def test_named_with_missing_guest(self):
        records = self.host.get_memory_stats(['nope', 'test'])
        by_name = {r.name: r for r in records}
        self.assertIsNone(by_name['test'].error)
        self.assertEqual('No guest named nope on test:///default: '
                         '"nova-libvirt memstats" lists the guests there.',
                         by_name['nope'].error)

    def test_unsupported_bulk_call_falls_back_per_domain(self):
        conn = self.host.connect()
        self.useFixture(fixtures.MockPatchObject(
            conn, 'domainListGetStats',
            side_effect=fakelibvirt.libvirt_error(libvirt.VIR_ERR_NO_SUPPORT)))
        records = self.host.get_memory_stats(['test', 'nope'])
        self.assertEqual(['test', 'nope'], [r.name for r in records])
        # test:///default's canned virDomainMemoryStats figures
        self.assertIn('actual', records[0].stats)
        self.assertEqual('No guest named nope on test:///default: '
                         '"nova-libvirt memstats" lists the guests there.',
                         records[1].error)

    def test_lost_connection_reopened_once(self):
        self.host.connect().close()  # dies under the Host's feet
        records = self.host.get_memory_stats()
        self.assertEqual(['test'], [r.name for r in records])

    def test_gives_up_after_one_reopen(self):
        attempts = []

        def open_dying(uri, read_only):
            conn = connection.open_libvirt(uri, read_only)
            attempts.append(conn)
            conn.close()  # every connection dies at once
            return conn
        host = libvirt_host.Host('test:///default', opener=open_dying)
        e = self.assertRaises(exception.HypervisorUnavailable,
                              host.get_memory_stats)
        self.assertEqual(2, len(attempts))
        self.assertIn('test:///default', str(e))
        self.assertIn('libvirt failed to read domain statistics', str(e))
        self.assertEqual(1, len(str(e).splitlines()))
        self.assertNotIn('?', str(e))

    def test_find_guest(self):
        self.assertEqual('test', self.host.find_guest('test').name)
        self.assertIsNone(self.host.find_guest('nope'))

    def test_get_guest(self):
        guest = self.host.get_guest('test')
        self.assertEqual('test', guest.name)
        self.assertTrue(guest.is_active())
        e = self.assertRaises(exception.InstanceNotFound,
                              self.host.get_guest, 'nope')
        self.assertIn('nope', str(e))

    def test_guest_errors_name_call_and_domain(self):
        guest = self.host.get_guest('test')
        e = self.assertRaises(exception.LibvirtCallFailed, guest.launch)
        self.assertIn('create()', str(e))
        self.assertIn('test', str(e))


class ConnectTest(test.TestCase):

    def test_unknown_uri(self):
        host = libvirt_host.Host('nope:///x', timeout=60)
        e = self.assertRaises(exception.HypervisorUnavailable,
                              host.connect)
        self.assertIn('Cannot connect to nope:///x', str(e))
        self.assertIn('connection_uri', str(e))
        self.assertEqual(1, len(str(e).splitlines()))

    def test_daemon_down_hint_does_not_offer_the_embedded_driver(self):
        # An exporter and the commands share the daemon; an embedded root
        # cannot be shared with a running exporter.
        hint = connection.hint('qemu:///system')
        self.assertIn('start libvirtd', hint)
        self.assertNotIn('embedded', hint)

    def test_root_holder_cut_at_a_word(self):
        root = self.useFixture(fixtures.TempDir()).path
        os.makedirs(os.path.join(root, 'run', 'qemu'))
        with open(os.path.join(root, 'run', 'qemu', 'driver.pid'), 'w') as f:
            f.write(str(os.getpid()))
        held = embed.holder(root)
        self.assertIn(f'pid {os.getpid()}: ', held)
        with open(f'/proc/{os.getpid()}/cmdline', 'rb') as f:
            words = f.read().replace(b'\0', b' ').decode().split()
        shown = held.split(': ', 1)[1].rstrip(')').removesuffix(' ...')
        # whole words only
        self.assertTrue(all(w in words for w in shown.split()), shown)

    def test_embed_needs_root(self):
        e = self.assertRaises(
            exception.HypervisorUnavailable,
            libvirt_host.Host('qemu:///embed').connect)
        self.assertIn('?root=DIR', str(e))

    def test_embed_uri_round_trip(self):
        uri = embed.embed_uri('/var/lib/nova/libvirt/qemu-embed')
        self.assertEqual('/var/lib/nova/libvirt/qemu-embed',
                         embed.embed_root_of(uri))
        self.assertIsNone(embed.embed_root_of('qemu:///system'))

    def test_prepare_embed_root(self):
        root = os.path.join(self.useFixture(fixtures.TempDir()).path, 'r')
        embed.prepare_embed_root(root)
        path = os.path.join(root, 'etc', 'qemu.conf')
        with open(path) as f:
            text = f.read()
        for line in ('stdio_handler = "file"', 'user = "root"',
                     'group = "root"'):
            self.assertIn(line, text)
        with open(path, 'w') as f:
            f.write('user = "libvirt-qemu"\n')
        embed.prepare_embed_root(root)  # rewritten on use
        with open(path) as f:
            self.assertEqual(text, f.read())


class HostBoundsTest(test.TestCase):
    """Every call of a Host is bounded: opening, listing, lookups, XML."""

    def setUp(self):
        super().setUp()
        self.spy = self.useFixture(fakelibvirt.WaitSpy())

    def test_every_host_call_is_bounded_while_the_daemon_is_frozen(self):
        fake = self.useFixture(fakelibvirt.FakeHost(FakeDomain('g'),
                                                    timeout=0.3))
        host = fake.host
        fake.conn.daemon.clear()
        for what, call in (('listAllDomains()', host.list_guests),
                           ('lookupByName() for guest g',
                            lambda: host.get_guest('g'))):
            self.spy.clear()
            e = self.assertRaises(exception.HypervisorNotAnswering, call)
            self.assertEqual([(0.3, False)], self.spy.waits)
            self.assertIn(f'did not answer {what} within 0.3s', str(e))
            self.assertEqual(1, len(str(e).splitlines()))

    def test_opening_is_bounded_and_shared(self):
        opened = threading.Event()
        self.addCleanup(opened.set)
        opens = []

        def slow_open(uri, read_only):
            opens.append(1)
            opened.wait(10)
            return fakelibvirt.FakeConnection()
        host = libvirt_host.Host('qemu:///system', timeout=0.2,
                                 opener=slow_open)
        for _ in range(3):
            self.spy.clear()
            e = self.assertRaises(exception.HypervisorNotAnswering,
                                  host.get_memory_stats, timeout=0.2)
            self.assertLessEqual(self.spy.in_vain, 0.2)
            self.assertIn('did not answer open() within 0.2s', str(e))
        self.assertEqual(1, len(opens))  # one open, waited for by all
        opened.set()
        self.wait_for('the open to end', lambda: not host.pending_calls,
                      10, 0.01)
        self.assertEqual([], host.get_memory_stats())

    def test_xml_read_past_its_bound_keeps_what_was_read(self):
        release = threading.Event()
        self.addCleanup(release.set)

        class Guest:
            def __init__(self, xml, stuck=False):
                self.xml, self.stuck = xml, stuck

            def get_xml_desc(self):
                if self.stuck:
                    release.wait(10)
                return self.xml
        # the guests read on their own connection, none opened here
        host = libvirt_host.Host('fake:///', opener=lambda uri, ro: None)
        found = host.get_xml_descs(
            [Guest('<a/>'), Guest('<b/>', stuck=True), Guest('<c/>')], 0.2)
        self.assertEqual('<a/>', found[0])
        for index in (1, 2):
            self.assertIsInstance(found[index],
                                  exception.HypervisorNotAnswering)
            self.assertIn('did not answer XMLDesc() within 0.2s',
                          str(found[index]))

    def test_embedded_open_waits_for_libvirt_to_reconnect(self):
        guests = [FakeDomain(f'g{i}') for i in range(3)]
        for guest in guests:
            guest.hold(0.1)
        conn = fakelibvirt.FakeConnection(*guests)
        connection.wait_reconnected(conn)
        # returned once each was free again
        self.assertEqual([[0, 0, 0]] * 3,
                         [g.controlInfo() for g in guests])
        guests[0].hold(10)  # never done: bounded
        connection.wait_reconnected(conn, timeout=0.2)
        self.assertEqual(2, guests[0].controlInfo()[0])  # still held

