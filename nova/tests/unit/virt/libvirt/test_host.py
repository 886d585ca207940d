"""Tests for nova.virt.libvirt.host on libvirt's test:///default driver.

test:///default answers with canned figures whatever a domain's XML says:
these tests prove the plumbing, never the feature (the functional tests
do that on real QEMU).
"""

import functools
import os
import threading
import time

from unittest import mock

import fixtures
import libvirt

from nova import exception
from nova import test
from nova.virt.libvirt import bounded
from nova.virt.libvirt import host as libvirt_host
from nova.virt.libvirt import stats_poll


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
        self.assertEqual('No guest named nope on test:///default: '
                         '"nova-libvirt memstats" lists the guests there.',
                         by_name['nope'].error)

    def test_unsupported_bulk_call_falls_back_per_domain(self):
        conn = self.host.connect()
        self.useFixture(fixtures.MockPatchObject(
            conn, 'domainListGetStats',
            side_effect=_libvirt_error(libvirt.VIR_ERR_NO_SUPPORT)))
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
        real_open = libvirt_host.Host._open

        def open_dying(host):
            conn = real_open(host)
            attempts.append(conn)
            conn.close()  # every connection dies at once
            return conn
        self.useFixture(fixtures.MockPatchObject(
            libvirt_host.Host, '_open', open_dying))
        e = self.assertRaises(exception.HypervisorUnavailable,
                              self.host.get_memory_stats)
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
        hint = libvirt_host._hint('qemu:///system')
        self.assertIn('start libvirtd', hint)
        self.assertNotIn('embedded', hint)

    def test_root_holder_cut_at_a_word(self):
        root = self.useFixture(fixtures.TempDir()).path
        os.makedirs(os.path.join(root, 'run', 'qemu'))
        with open(os.path.join(root, 'run', 'qemu', 'driver.pid'), 'w') as f:
            f.write(str(os.getpid()))
        held = libvirt_host._holder(root)
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
    """A virDomain of FakeConnection, with libvirt's per-domain job: a
    NOWAIT call skips a guest whose job is held; a call holding the job of
    a frozen guest waits until it thaws or libvirt gives up."""

    def __init__(self, name, state=1, domain_id=1):
        self._name, self._state, self._id = name, state, domain_id
        self.job = threading.Lock()
        self.job_since = None
        self.thawed = threading.Event()
        self.thawed.set()
        self.gave_up = threading.Event()
        self.reads = 0  # calls that reached its QEMU

    def name(self):
        return self._name

    def UUIDString(self):
        return f'uuid-{self._name}'

    def ID(self):
        return self._id if self._state in (1, 3) else -1

    def state(self):
        return [self._state, 0]

    def controlInfo(self):
        since = self.job_since
        if since is None:
            return [0, 0, 0]
        return [2, 0, int((time.monotonic() - since) * 1000)]

    def freeze(self):
        self.thawed.clear()
        self.gave_up.clear()

    def thaw(self):
        self.thawed.set()

    def give_up(self):
        """libvirt's job timeout: the stuck call returns, QEMU stays
        frozen."""
        self.gave_up.set()

    def hold(self, seconds):
        """Hold the job for a while, as libvirt's reconnect does."""
        self.job.acquire()
        self.job_since = time.monotonic()

        def release():
            time.sleep(seconds)
            self.job_since = None
            self.job.release()
        threading.Thread(target=release, daemon=True).start()

    def read(self, nowait):
        """The record a bulk call gets for this domain."""
        if self._state not in (1, 3):
            return {'state.state': self._state}
        if not self.job.acquire(blocking=not nowait):
            return dict(SKIPPED, **{'state.state': self._state})
        self.job_since = time.monotonic()
        try:
            self.reads += 1
            while not self.thawed.wait(0.01):
                if self.gave_up.is_set():
                    return dict(SKIPPED, **{'state.state': self._state})
            return dict(HEALTHY, **{'state.state': self._state})
        finally:
            self.job_since = None
            self.job.release()


HEALTHY = {'state.state': 1, 'balloon.current': 262144,
           'balloon.maximum': 262144, 'balloon.rss': 1000,
           'balloon.available': 200000, 'balloon.usable': 100000,
           'balloon.last-update': 1800000000}
# What the NOWAIT call gives for a guest whose job another call holds.
SKIPPED = {'state.state': 1, 'balloon.current': 262144,
           'balloon.maximum': 262144}
NOWAIT = libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT


class FakeConnection:
    """The few virConnect calls a poll makes, over FakeDomains; a frozen
    daemon (``daemon.clear()``) blocks every one of them."""

    def __init__(self, *domains):
        self.domains = list(domains)
        self.daemon = threading.Event()
        self.daemon.set()
        self.calls = []
        self.requests = threading.Semaphore(
            stats_poll.CLIENT_REQUESTS)
        self.closed = False

    def _daemon(self, call):
        self.calls.append(call)
        self.daemon.wait(60)

    def listAllDomains(self, flags=0):
        self._daemon('listAllDomains')
        return list(self.domains)

    def domainListGetStats(self, domains, kinds, flags=0):
        self._daemon(('domainListGetStats',
                      tuple(d.name() for d in domains)))
        if getattr(self, 'held', 0) and len(domains) > 1:
            held, self.held = self.held, 0
            time.sleep(held)
        with self.requests:  # libvirtd's max_client_requests
            return [(d, d.read(flags & NOWAIT)) for d in domains]

    def getAllDomainStats(self, kinds, flags=0):
        self._daemon('getAllDomainStats')
        return [(d, d.read(flags & NOWAIT)) for d in self.domains]

    def hold_next_bulk_call(self, seconds):
        """libvirtd delaying the next bulk call over other guests, taking
        none of their jobs (seen under load while a QEMU is stopped)."""
        self.held = seconds

    def lookupByName(self, name):
        self._daemon('lookupByName')
        for domain in self.domains:
            if domain.name() == name:
                return domain
        raise _libvirt_error(libvirt.VIR_ERR_NO_DOMAIN)

    def getLibVersion(self):
        self._daemon('getLibVersion')
        with self.requests:
            return 9000000

    def isAlive(self):
        return 1

    def close(self):
        self.closed = True


class BoundedPollTest(test.TestCase):
    """A frozen guest or daemon never holds a poll past its timeout, and
    a guest libvirt holds only briefly is not called hung."""

    def _host(self, *domains, timeout=2.0):
        conn = FakeConnection(*domains)
        host = libvirt_host.Host('fake:///', timeout=timeout)
        host._conn = conn
        # Connections the poll opens: to the same guests.
        self.opened = []

        def open_new(_host):
            self.opened.append(FakeConnection(*domains))
            return self.opened[-1]
        self.useFixture(fixtures.MockPatchObject(
            libvirt_host.Host, '_open', open_new))
        # let stuck workers finish
        self.addCleanup(conn.daemon.set)
        for domain in domains:
            self.addCleanup(domain.thaw)
        return host, conn

    def _poll(self, host, timeout=2.0, names=None):
        start = time.monotonic()
        try:
            return {r.name: r for r in host.get_memory_stats(
                names, timeout=timeout)}
        finally:
            self.elapsed = time.monotonic() - start

    def _settle(self, host):
        """Wait until no call nor probe is left running."""
        for _ in range(200):
            probing = any(e.probe is not None and not e.probe.done.is_set()
                          for e in host._stuck.values())
            if not host.pending_calls and not probing:
                return
            time.sleep(0.01)
        self.fail('calls still pending')

    def test_frozen_guest_is_skipped_and_others_read(self):
        frozen, healthy = FakeDomain('frozen'), FakeDomain('healthy')
        host, conn = self._host(healthy, frozen)
        frozen.freeze()
        records = self._poll(host)
        self.assertLess(self.elapsed, 2.5)
        self.assertIsNone(records['healthy'].monitor_busy)
        self.assertEqual(200000, records['healthy'].stats['available'])
        self.assertGreaterEqual(records['frozen'].monitor_busy,
                                stats_poll.FIRST_WAIT)
        self.assertEqual({'actual': 262144, 'maximum': 262144},
                         records['frozen'].stats)
        self.assertEqual(['frozen'], host.stuck_guests)
        self.assertEqual(1, host.pending_calls)

        # the next polls do not wait for it
        for _ in range(3):
            records = self._poll(host)
            self.assertLess(self.elapsed, 0.3)
            self.assertIsNotNone(records['frozen'].monitor_busy)
            self.assertIsNone(records['healthy'].monitor_busy)
        frozen.thaw()
        self._settle(host)
        records = self._poll(host)
        self.assertIsNone(records['frozen'].monitor_busy)
        self.assertEqual([], host.stuck_guests)

    def test_two_stopped_qemus_in_one_chunk_cost_only_that_chunk(self):
        # The NOWAIT call that reads a late chunk again skips the guest
        # the first call is stuck on, and gets stuck on the next stopped
        # one: the other chunk's guests keep their figures, these two are
        # unanswered for this poll, and stuck from the next.
        domains = [FakeDomain(f'g{i}') for i in range(4)]
        host, conn = self._host(*domains)
        host.stats_workers = 2  # chunks g0, g2 and g1, g3
        domains[1].freeze()
        domains[3].freeze()
        records = self._poll(host)
        self.assertLess(self.elapsed, 2.5)
        for name in ('g0', 'g2'):
            self.assertIsNone(records[name].monitor_busy)
            self.assertEqual(200000, records[name].stats['available'])
        for name in ('g1', 'g3'):
            self.assertIsNotNone(records[name].monitor_busy)
            self.assertTrue(records[name].active)
        self.assertEqual(2, host.pending_calls)
        time.sleep(0.5)  # the next scrape: g3 stuck for over a second
        records = self._poll(host)
        self.assertLess(self.elapsed, 0.5)
        self.assertEqual(['g1', 'g3'], sorted(host.stuck_guests))
        self.assertIsNone(records['g0'].monitor_busy)

    def _stick(self, host, conn, domains):
        """A call stuck on each of ``domains`` (stopped QEMUs), as the
        first calls to reach them are."""
        for domain in domains:
            domain.freeze()
            self.assertRaises(
                exception.HypervisorNotAnswering, host.run_bounded, 'stuck',
                functools.partial(conn.domainListGetStats, [domain], 0),
                0.05, conn=conn)

    def test_healthy_guest_read_in_the_poll_that_meets_two_stopped(self):
        # One bulk call stuck on a stopped QEMU: each guest is read again
        # by a call of its own. f0's skips it (our call holds its job),
        # f1's is stuck on the second stopped QEMU, h's answers.
        domains = [FakeDomain('f0'), FakeDomain('f1'), FakeDomain('h')]
        host, conn = self._host(*domains)
        domains[0].freeze()
        domains[1].freeze()
        records = self._poll(host)
        self.assertEqual(200000, records['h'].stats['available'])
        self.assertIsNone(records['h'].monitor_busy)
        self.assertIsNotNone(records['f0'].monitor_busy)
        self.assertIsNotNone(records['f1'].monitor_busy)
        self.assertEqual(['f0'], host.stuck_guests)
        self.assertEqual([], self.opened)  # four requests left here
        time.sleep(0.5)  # the next scrape
        records = self._poll(host)
        self.assertEqual(['f0', 'f1'], host.stuck_guests)
        self.assertEqual(200000, records['h'].stats['available'])

    def test_every_chunk_stuck_healthy_guests_still_read(self):
        # Four chunks each stuck on a stopped QEMU take four of the five
        # requests libvirtd serves of the connection, the fifth is kept:
        # the eight guests are read again one per call on two new
        # connections. Those of m0-m3 skip them (our calls hold their
        # jobs), m4's is stuck on a fifth stopped QEMU, and the healthy
        # guests answer, in the poll that first meets them all.
        domains = [FakeDomain(f'm{i}') for i in range(8)]
        host, conn = self._host(*domains)
        host.stats_workers = 4  # chunks m0 m4, m1 m5, m2 m6, m3 m7
        for domain in domains[:5]:
            domain.freeze()
        records = self._poll(host)
        for name in ('m5', 'm6', 'm7'):
            self.assertEqual(200000, records[name].stats['available'])
            self.assertIsNone(records[name].monitor_busy)
        for domain in domains[:5]:
            self.assertIsNotNone(records[domain.name()].monitor_busy)
        self.assertEqual(['m0', 'm1', 'm2', 'm3'], host.stuck_guests)
        self.assertEqual(2, len(self.opened))
        self.assertEqual(1, host.free_requests())
        for fresh in self.opened:  # a listing, four reads each
            self.assertEqual(4, sum(c[0] == 'domainListGetStats'
                                    for c in fresh.calls))
        # The next poll: m4 found stuck too, the rest read at once.
        time.sleep(stats_poll.BRIEF_BUSY)
        records = self._poll(host)
        self.assertEqual(['m0', 'm1', 'm2', 'm3', 'm4'], host.stuck_guests)
        for name in ('m5', 'm6', 'm7'):
            self.assertEqual(200000, records[name].stats['available'])

    def test_stuck_calls_move_polls_to_a_new_connection(self):
        # libvirtd serves five calls of a connection at once: with five
        # stuck, a call on it waits, and another connection answers.
        frozen = [FakeDomain(f'f{i}') for i in range(5)]
        healthy = FakeDomain('h')
        host, conn = self._host(healthy, *frozen)
        opened = self.opened
        self._stick(host, conn, frozen)
        self.assertEqual(0, host.free_requests())
        records = self._poll(host)
        self.assertEqual(1, len(opened))
        # no guest is known stuck yet: the log does not blame one
        self.assertIn('5 calls to fake:/// have not returned (a stopped '
                      'QEMU, or libvirtd itself)', self.log_fixture.output)
        self.assertEqual(200000, records['h'].stats['available'])
        for domain in frozen:
            self.assertIsNotNone(records[domain.name()].monitor_busy)
        self.assertFalse(conn.closed)  # its calls still run
        for domain in frozen:
            domain.give_up()
        self._settle(host)
        self._poll(host)
        self.assertTrue(conn.closed)
        self.assertEqual(1, len(opened))

    def test_chunks_take_only_the_requests_stuck_calls_leave(self):
        # (stuck on guests gone since, so the poll reads only chunks)
        gone = [FakeDomain('gone-1'), FakeDomain('gone-2')]
        host, conn = self._host(*[FakeDomain(f'g{i}') for i in range(8)])
        self.addCleanup(lambda: [d.thaw() for d in gone])
        host.stats_workers = 4
        self._stick(host, conn, gone)
        self.assertEqual(3, host.free_requests())
        conn.calls.clear()
        records = self._poll(host)
        # three left, one kept for the listing and the XML reads
        self.assertEqual(2, sum(c[0] == 'domainListGetStats'
                                for c in conn.calls))
        self.assertEqual(8, sum(r.stats.get('available') == 200000
                                for r in records.values()))

    def test_stuck_guest_is_not_waited_for_again_after_libvirt_gives_up(
            self):
        # libvirt gives up a stuck call after 30 s; QEMU is still stopped,
        # and the next call to reach it would be stuck again.
        frozen, healthy = FakeDomain('frozen'), FakeDomain('healthy')
        host, conn = self._host(healthy, frozen)
        frozen.freeze()
        self._poll(host)
        frozen.give_up()
        self._settle(host)
        frozen.freeze()  # still stopped; the next call gets stuck again
        reads = frozen.reads
        for _ in range(4):
            records = self._poll(host)
            self.assertLess(self.elapsed, 0.6)
            self.assertIsNotNone(records['frozen'].monitor_busy)
            self.assertEqual(200000, records['healthy'].stats['available'])
        # one probe reached the stopped QEMU, and it is still stuck; it is
        # not counted among the pending calls (one per stuck guest at most)
        self.assertEqual(reads + 1, frozen.reads)
        self.assertEqual(0, host.pending_calls)
        self.assertEqual(['frozen'], host.stuck_guests)
        frozen.thaw()
        self._settle(host)
        records = self._poll(host)
        self.assertIsNone(records['frozen'].monitor_busy)
        self.assertEqual(200000, records['frozen'].stats['available'])

    def test_daemon_delaying_the_bulk_call_costs_little_while_stuck(self):
        frozen = FakeDomain('frozen')
        healthy = [FakeDomain(f'h{i}') for i in range(3)]
        host, conn = self._host(frozen, *healthy, timeout=5.0)
        frozen.freeze()
        self._poll(host, timeout=5.0)  # finds it stuck: half the timeout
        conn.hold_next_bulk_call(3)
        records = self._poll(host, timeout=5.0)
        self.assertLess(self.elapsed, 1.0)  # not half the timeout again
        for guest in healthy:
            self.assertEqual(200000,
                             records[guest.name()].stats['available'])
        self.assertIsNotNone(records['frozen'].monitor_busy)

    def test_guest_held_briefly_is_read_again(self):
        # A new connection: libvirt reconnects to each QEMU and holds its
        # job for a moment; a NOWAIT call would skip them all.
        guests = [FakeDomain(f'g{i}') for i in range(3)]
        host, conn = self._host(*guests)
        for guest in guests:
            guest.hold(0.05)
        records = self._poll(host)
        for guest in guests:
            record = records[guest.name()]
            self.assertIsNone(record.monitor_busy, guest.name())
            self.assertEqual(200000, record.stats['available'])
        self.assertEqual([], host.stuck_guests)

    def test_busy_monitor_freed_meanwhile_is_still_skipped(self):
        guest = FakeDomain('g')
        host, conn = self._host(guest)
        guest.hold(0.2)  # held past the poll's brief re-reads? no: read
        self.assertIsNone(self._poll(host)['g'].monitor_busy)
        guest.hold(10)  # held for longer than this poll lasts
        record = self._poll(host, timeout=0.5)['g']
        self.assertIsNotNone(record.monitor_busy)
        self.assertLess(self.elapsed, 0.8)

    def test_paused_guest_is_suspended_not_stuck(self):
        guest = FakeDomain('p', state=libvirt.VIR_DOMAIN_PAUSED)
        host, conn = self._host(guest)
        record = self._poll(host)['p']
        self.assertEqual('paused', record.suspended)
        self.assertTrue(record.active)
        self.assertIsNone(record.monitor_busy)

    def test_frozen_daemon_fails_in_one_line_within_bound(self):
        host, conn = self._host(FakeDomain('g'))
        conn.daemon.clear()
        e = self.assertRaises(exception.HypervisorUnavailable,
                              self._poll, host, 1.0)
        self.assertLess(self.elapsed, 1.5)
        self.assertIn('did not answer getAllDomainStats() within 1s',
                      str(e))
        self.assertEqual(1, len(str(e).splitlines()))

    def test_every_host_call_is_bounded_while_the_daemon_is_frozen(self):
        host, conn = self._host(FakeDomain('g'), timeout=0.3)
        conn.daemon.clear()
        for what, call in (('listAllDomains()', host.list_guests),
                           ('lookupByName() for guest g',
                            lambda: host.get_guest('g'))):
            start = time.monotonic()
            e = self.assertRaises(exception.HypervisorNotAnswering, call)
            self.assertLess(time.monotonic() - start, 0.6)
            self.assertIn(f'did not answer {what} within 0.3s', str(e))
            self.assertEqual(1, len(str(e).splitlines()))

    def test_opening_is_bounded_and_shared(self):
        opened = threading.Event()
        self.addCleanup(opened.set)
        opens = []

        def slow_open(host):
            opens.append(1)
            opened.wait(10)
            return FakeConnection()
        self.useFixture(fixtures.MockPatchObject(
            libvirt_host.Host, '_open', slow_open))
        host = libvirt_host.Host('qemu:///system', timeout=0.2)
        for _ in range(3):
            start = time.monotonic()
            e = self.assertRaises(exception.HypervisorNotAnswering,
                                  host.get_memory_stats, timeout=0.2)
            self.assertLess(time.monotonic() - start, 0.5)
            self.assertIn('did not answer open() within 0.2s', str(e))
        self.assertEqual(1, len(opens))  # one open, waited for by all
        opened.set()
        self._settle(host)
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
        host = libvirt_host.Host('fake:///')
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
        conn = FakeConnection(*guests)
        start = time.monotonic()
        libvirt_host._wait_reconnected(conn)
        self.assertGreaterEqual(time.monotonic() - start, 0.09)
        self.assertEqual([[0, 0, 0]] * 3,
                         [g.controlInfo() for g in guests])
        guests[0].hold(10)  # never done: bounded
        start = time.monotonic()
        libvirt_host._wait_reconnected(conn, timeout=0.2)
        self.assertLess(time.monotonic() - start, 0.5)

    def test_named_guests_from_one_listing(self):
        host, conn = self._host(FakeDomain('a'), FakeDomain('b'))
        names = [f'nope-{i}' for i in range(20000)] + ['b']
        records = host.get_memory_stats(names)
        self.assertEqual(20001, len(records))
        self.assertEqual('b', records[0].name)
        self.assertIsNone(records[0].error)
        self.assertTrue(records[1].error.startswith(
            'No guest named nope-0 on fake:///: '), records[1].error)
        self.assertEqual(1, conn.calls.count('listAllDomains'))

    def test_stuck_calls_do_not_pile_up(self):
        self.useFixture(fixtures.MockPatch(
            'nova.virt.libvirt.bounded.MAX_PENDING_CALLS', 2))
        host, conn = self._host(FakeDomain('g'))
        conn.daemon.clear()
        self.assertRaises(exception.HypervisorUnavailable, self._poll, host,
                          1.0)
        self.assertEqual(2, host.pending_calls)
        calls = len(conn.calls)
        e = self.assertRaises(exception.HypervisorUnavailable, self._poll,
                              host, 1.0)
        self.assertLess(self.elapsed, 0.1)  # no new call was started
        self.assertEqual(calls, len(conn.calls))
        self.assertIn('has not answered 2 earlier calls', str(e))

    def test_workers_are_kept_and_a_stuck_one_is_not_waited_for(self):
        # A pool of its own: other tests' workers come and go meanwhile.
        self.useFixture(fixtures.MockPatch(
            'nova.virt.libvirt.bounded.WORKERS', bounded.Workers()))

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

    def test_idle_workers_end(self):
        pool = bounded.Workers()
        pool.IDLE_SECONDS = 0.1
        self.useFixture(fixtures.MockPatch(
            'nova.virt.libvirt.bounded.WORKERS', pool))
        host = libvirt_host.Host('fake:///')
        release = threading.Event()
        self.addCleanup(release.set)
        for _ in range(3):  # three calls at once: three threads
            self.assertRaises(exception.HypervisorNotAnswering,
                              host.run_bounded, 'stuck', release.wait, 0.01)
        release.set()
        self.assertTrue(self._settled(pool), 'three idle threads')
        time.sleep(0.5)
        self.assertEqual(0, pool._idle)  # all ended
        self.assertEqual(7, host.run_bounded('x', lambda: 7, 1))

    @staticmethod
    def _settled(pool):
        for _ in range(100):
            if pool._idle == 3:
                return True
            time.sleep(0.005)
        return False

    def test_figures_skipped(self):
        self.assertTrue(stats_poll.figures_skipped(SKIPPED))
        self.assertFalse(stats_poll.figures_skipped(HEALTHY))
        # test:///default gives no balloon figures at all: not skipped
        self.assertFalse(stats_poll.figures_skipped({'state.state': 1}))


class ChunkedPollTest(test.TestCase):
    """stats_workers > 1: the same records, read in parallel chunks."""

    XML = ("<domain type='test'><name>chunk-{}</name><memory>1024</memory>"
           "<os><type>hvm</type></os></domain>")

    def _host(self, workers, guests=9):
        node = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'node.xml')
        with open(node, 'w') as f:
            f.write('<node>' + ''.join(
                self.XML.format(i) for i in range(guests)) + '</node>')
        host = libvirt_host.Host(f'test://{node}', stats_workers=workers)
        self.addCleanup(host.close)
        return host

    def _poll(self, host, names=None):
        conn = host.connect()
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

    def test_automatic_choice_from_the_number_of_guests(self):
        self.useFixture(fixtures.MockPatch('os.cpu_count', return_value=2))
        self.assertEqual([1, 1, 3, 3, 4, 4, 4],
                         [stats_poll.auto_workers(n)
                          for n in (1, 5, 6, 7, 8, 20, 1000)])
        with mock.patch('os.cpu_count', return_value=1):
            self.assertEqual(2, stats_poll.auto_workers(20))  # 2 x cores
        few = self._host(0, guests=5)
        names, calls = self._poll(few)  # knows no count yet: lists first
        self.assertEqual((5, 1), (len(names), calls))
        for _ in range(2):  # then few guests: one bulk call
            names, calls = self._poll(few)
            self.assertEqual((5, 0), (len(names), calls))
        many = self._host(0, guests=20)
        for _ in range(2):  # 4 chunks (2 cores), from the first poll
            chunked, calls = self._poll(many)
            self.assertEqual((20, 4), (len(chunked), calls))

    def test_few_domains_stay_one_call(self):
        names, calls = self._poll(self._host(4), ['chunk-1', 'chunk-2'])
        self.assertEqual((['chunk-1', 'chunk-2'], 1), (names, calls))
