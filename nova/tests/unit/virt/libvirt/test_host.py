"""Tests for nova.virt.libvirt.host on libvirt's test:///default driver.

test:///default answers with canned figures whatever a domain's XML says:
these tests prove the plumbing, never the feature (the functional tests
do that on real QEMU).
"""

import os
import threading
import time

import fixtures
import libvirt

from nova import exception
from nova import test
from nova.virt.libvirt import host as libvirt_host


def _libvirt_error(code):
    error = libvirt.libvirtError('injected')
    error.err = (code, 0, 'injected failure', 2, None, None, None, 0, 0)
    return error


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
        self.assertEqual('No guest named nope.', by_name['nope'].error)

    def test_unsupported_bulk_call_falls_back_per_domain(self):
        def unsupported(names):
            raise _libvirt_error(libvirt.VIR_ERR_NO_SUPPORT)
        self.useFixture(fixtures.MockPatchObject(self.host, '_bulk_stats',
                                                 unsupported))
        records = self.host.get_memory_stats(['test', 'nope'])
        self.assertEqual(['test', 'nope'], [r.name for r in records])
        # test:///default's canned virDomainMemoryStats figures
        self.assertIn('actual', records[0].stats)
        self.assertEqual('No guest named nope.', records[1].error)

    def test_lost_connection_reopened_once(self):
        self.host.get_connection().close()  # dies under the Host's feet
        records = self.host.get_memory_stats()
        self.assertEqual(['test'], [r.name for r in records])

    def test_gives_up_after_one_reopen(self):
        attempts = []

        def always_lost(names):
            attempts.append(names)
            self.host.get_connection().close()
            raise _libvirt_error(libvirt.VIR_ERR_INVALID_CONN)
        self.useFixture(fixtures.MockPatchObject(self.host, '_bulk_stats',
                                                 always_lost))
        e = self.assertRaises(exception.HypervisorUnavailable,
                              self.host.get_memory_stats)
        self.assertEqual(2, len(attempts))
        self.assertIn('test:///default', str(e))
        self.assertIn('injected failure', str(e))

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
        e = self.assertRaises(exception.HypervisorUnavailable,
                              libvirt_host.Host('nope:///x').get_connection)
        self.assertIn('Cannot connect to nope:///x', str(e))
        self.assertIn('connection_uri', str(e))
        self.assertEqual(1, len(str(e).splitlines()))

    def test_embed_needs_root(self):
        e = self.assertRaises(
            exception.HypervisorUnavailable,
            libvirt_host.Host('qemu:///embed').get_connection)
        self.assertIn('?root=DIR', str(e))

    def test_embed_uri_round_trip(self):
        uri = libvirt_host.embed_uri('/var/lib/nova/libvirt/qemu-embed')
        self.assertEqual('/var/lib/nova/libvirt/qemu-embed',
                         libvirt_host.embed_root_of(uri))
        self.assertIsNone(libvirt_host.embed_root_of('qemu:///system'))

    def test_prepare_embed_root(self):
        root = os.path.join(self.useFixture(fixtures.TempDir()).path, 'r')
        libvirt_host.prepare_embed_root(root)
        path = os.path.join(root, 'etc', 'qemu.conf')
        with open(path) as f:
            text = f.read()
        for line in ('stdio_handler = "file"', 'user = "root"',
                     'group = "root"'):
            self.assertIn(line, text)
        with open(path, 'w') as f:
            f.write('user = "libvirt-qemu"\n')
        libvirt_host.prepare_embed_root(root)  # rewritten on use
        with open(path) as f:
            self.assertEqual(text, f.read())


class FakeDomain:
    """A virDomain of the fake connection below."""

    def __init__(self, name, control=(0, 0, 0)):
        self._name, self.control = name, control

    def name(self):
        return self._name

    def UUIDString(self):
        return f'uuid-{self._name}'

    def ID(self):
        return 1

    def controlInfo(self):
        return list(self.control)


HEALTHY = {'state.state': 1, 'balloon.current': 262144,
           'balloon.maximum': 262144, 'balloon.rss': 1000,
           'balloon.available': 200000, 'balloon.usable': 100000,
           'balloon.last-update': 1800000000}
# What the NOWAIT call gives for a guest whose job another call holds.
SKIPPED = {'state.state': 1, 'balloon.current': 262144,
           'balloon.maximum': 262144}


class FreezingConnection:
    """getAllDomainStats whose first ``stuck`` calls block until released,
    as libvirt's do on a frozen QEMU (the first call) or daemon (all)."""

    def __init__(self, stuck: int, records):
        self.stuck, self.records = stuck, records
        self.release = threading.Event()
        self.calls = []

    def getAllDomainStats(self, kinds, flags=0):
        self.calls.append(flags)
        if len(self.calls) <= self.stuck:
            self.release.wait(60)
        return self.records

    def close(self):
        pass


class BoundedPollTest(test.TestCase):
    """A frozen guest or daemon never holds a poll past its timeout."""

    def _host(self, conn):
        host = libvirt_host.Host('fake:///')
        host._conn = conn
        self.addCleanup(conn.release.set)  # let stuck workers finish
        return host

    def _poll(self, host, timeout=1.0):
        start = time.monotonic()
        try:
            return host.get_memory_stats(timeout=timeout)
        finally:
            self.elapsed = time.monotonic() - start

    def test_frozen_guest_is_skipped_and_others_read(self):
        frozen = FakeDomain('frozen', control=(2, 0, 3003))
        conn = FreezingConnection(1, [(FakeDomain('healthy'), HEALTHY),
                                      (frozen, SKIPPED)])
        host = self._host(conn)
        records = {r.name: r for r in self._poll(host)}
        self.assertLess(self.elapsed, 1.5)
        self.assertEqual(2, len(conn.calls))
        nowait = libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT
        self.assertEqual([nowait, nowait], conn.calls)
        self.assertIsNone(records['healthy'].monitor_busy)
        self.assertEqual(200000, records['healthy'].stats['available'])
        self.assertEqual(3.003, records['frozen'].monitor_busy)
        self.assertEqual({'actual': 262144, 'maximum': 262144},
                         records['frozen'].stats)
        self.assertEqual(1, host.pending_calls)

        # the next poll does not wait for the stuck call
        self._poll(host)
        self.assertLess(self.elapsed, 0.2)
        conn.release.set()
        for _ in range(100):
            if not host.pending_calls:
                break
            time.sleep(0.01)
        self.assertEqual(0, host.pending_calls)

    def test_busy_monitor_freed_meanwhile_is_still_skipped(self):
        conn = FreezingConnection(0, [(FakeDomain('g'), SKIPPED)])
        record = self._poll(self._host(conn))[0]
        self.assertEqual(0.0, record.monitor_busy)

    def test_frozen_daemon_fails_in_one_line_within_bound(self):
        conn = FreezingConnection(100, [])
        host = self._host(conn)
        e = self.assertRaises(exception.HypervisorUnavailable,
                              self._poll, host)
        self.assertLess(self.elapsed, 1.5)
        self.assertIn('did not answer getAllDomainStats() within', str(e))
        self.assertEqual(1, len(str(e).splitlines()))

    def test_stuck_calls_do_not_pile_up(self):
        self.useFixture(fixtures.MockPatch(
            'nova.virt.libvirt.host.MAX_PENDING_CALLS', 2))
        conn = FreezingConnection(100, [])
        host = self._host(conn)
        self.assertRaises(exception.HypervisorUnavailable, self._poll, host)
        self.assertEqual(2, host.pending_calls)
        e = self.assertRaises(exception.HypervisorUnavailable, self._poll,
                              host)
        self.assertLess(self.elapsed, 0.1)  # no new call was started
        self.assertEqual(2, len(conn.calls))
        self.assertIn('has not answered 2 earlier calls', str(e))

    def test_workers_are_kept_and_a_stuck_one_is_not_waited_for(self):
        # A pool of its own: other tests' workers come and go meanwhile.
        self.useFixture(fixtures.MockPatch(
            'nova.virt.libvirt.host._WORKERS', libvirt_host._Workers()))

        def workers():
            return sum(t.name == 'libvirt-call' for t in threading.enumerate())

        host = libvirt_host.Host('fake:///')
        before = workers()
        for _ in range(20):
            self.assertEqual(3, host.run_bounded('x', lambda: 3, 1))
        self.assertEqual(before + 1, workers())  # one, reused

        release = threading.Event()
        self.addCleanup(release.set)
        self.assertRaises(exception.HypervisorNotAnswering,
                          host.run_bounded, 'stuck', release.wait, 0.05)
        # the stuck call keeps its thread; the next one gets another
        self.assertEqual(4, host.run_bounded('x', lambda: 4, 1))
        self.assertEqual(before + 2, workers())
        release.set()
        for _ in range(100):
            if not host.pending_calls:
                break
            time.sleep(0.01)
        self.assertEqual(5, host.run_bounded('x', lambda: 5, 1))
        self.assertEqual(before + 2, workers())

    def test_figures_skipped(self):
        self.assertTrue(libvirt_host.figures_skipped(SKIPPED))
        self.assertFalse(libvirt_host.figures_skipped(HEALTHY))
        # test:///default gives no balloon figures at all: not skipped
        self.assertFalse(libvirt_host.figures_skipped({'state.state': 1}))


class ChunkedPollTest(test.TestCase):
    """stats_workers > 1: the same records, read in parallel chunks."""

    XML = ("<domain type='test'><name>chunk-{}</name><memory>1024</memory>"
           "<os><type>hvm</type></os></domain>")

    def _host(self, workers):
        node = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'node.xml')
        with open(node, 'w') as f:
            f.write('<node>' + ''.join(self.XML.format(i) for i in range(9))
                    + '</node>')
        host = libvirt_host.Host(f'test://{node}', stats_workers=workers)
        self.addCleanup(host.close)
        return host

    def _poll(self, host, names=None):
        conn = host.get_connection()
        chunks = self.useFixture(fixtures.MockPatchObject(
            conn, 'domainListGetStats', wraps=conn.domainListGetStats)).mock
        records = host.get_memory_stats(names)
        return sorted(r.name for r in records), chunks.call_count

    def test_same_records_in_chunks(self):
        names, calls = self._poll(self._host(1))
        self.assertEqual(9, len(names))
        self.assertEqual(0, calls)  # one getAllDomainStats call
        chunked, calls = self._poll(self._host(4))
        self.assertEqual(names, chunked)
        self.assertEqual(4, calls)

    def test_few_domains_stay_one_call(self):
        names, calls = self._poll(self._host(4), ['chunk-1', 'chunk-2'])
        self.assertEqual((['chunk-1', 'chunk-2'], 1), (names, calls))
