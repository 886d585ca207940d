"""Tests for nova.virt.libvirt.stats_poll: the bulk statistics poll.

On fakes of libvirt (nova/tests/fixtures/libvirt.py) with its per-domain
job and libvirtd's requests per connection: a stopped QEMU (a frozen fake)
never costs a healthy guest its figures, and a poll's waits are checked by
what it waited for in vain (WaitSpy), never by the wall clock. Chunks on
libvirt's test:// driver.
"""

import functools
import os
from unittest import mock

import fixtures
import libvirt

from nova import exception
from nova import test
from nova.tests.fixtures import libvirt as fakelibvirt
from nova.tests.fixtures.libvirt import HEALTHY
from nova.tests.fixtures.libvirt import SKIPPED
from nova.tests.fixtures.libvirt import FakeDomain
from nova.virt.libvirt import host as libvirt_host
from nova.virt.libvirt import late_reads
from nova.virt.libvirt import records
from nova.virt.libvirt import stats_poll

# What the poll that first meets stopped QEMUs may wait in vain: its bulk
# calls' first wait, then the reads of one guest each.
FIRST_POLL = stats_poll.FIRST_WAIT + late_reads.SINGLE_WAIT


class BoundedPollTest(test.TestCase):
    """A frozen guest or daemon never holds a poll past its bound, nor
    costs a healthy guest its figures, and a guest libvirt holds only
    briefly is not called hung.
    """

    def setUp(self):
        super().setUp()
        self.spy = self.useFixture(fakelibvirt.WaitSpy())

    def _host(self, *domains, timeout=2.0):
        self.fake = self.useFixture(fakelibvirt.FakeHost(*domains,
                                                         timeout=timeout))
        self.opened = self.fake.opened
        return self.fake.host, self.fake.conn

    def _poll(self, host, timeout=2.0, names=None):
        """{name: record} of one poll; the spy holds its waits."""
        self.spy.clear()
        return {r.name: r for r in host.get_memory_stats(
            names, timeout=timeout)}

    def _settle(self, host):
        """Wait until no call nor probe is left running."""
        self.wait_for('the calls to end', self.fake.settled, 10, 0.01)

    def test_frozen_guest_is_skipped_and_others_read(self):
        frozen, healthy = FakeDomain('frozen'), FakeDomain('healthy')
        host, conn = self._host(healthy, frozen)
        frozen.freeze()
        records = self._poll(host)
        self.assertLessEqual(self.spy.in_vain, FIRST_POLL)
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
            self.assertEqual(0, self.spy.in_vain)  # nothing waited for
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
        self.assertLessEqual(self.spy.in_vain, FIRST_POLL)
        for name in ('g0', 'g2'):
            self.assertIsNone(records[name].monitor_busy)
            self.assertEqual(200000, records[name].stats['available'])
        for name in ('g1', 'g3'):
            self.assertIsNotNone(records[name].monitor_busy)
            self.assertTrue(records[name].active)
        self.assertEqual(2, host.pending_calls)
        records = self._poll(host)  # the next scrape
        self.assertEqual(0, self.spy.in_vain)
        self.assertEqual(['g1', 'g3'], sorted(host.stuck_guests))
        self.assertIsNone(records['g0'].monitor_busy)

    def _stick(self, host, conn, domains):
        """A call stuck on each of ``domains`` (stopped QEMUs), as the
        first calls to reach them are.
        """
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
        # read again on a new connection: this one's places are kept
        self.assertEqual(1, len(self.opened))
        # a listing, 3 reads, the skipped guests read again
        self.assertEqual(5, len(self.opened[0].calls))
        records = self._poll(host)
        self.assertEqual(['f0', 'f1'], host.stuck_guests)
        self.assertEqual(200000, records['h'].stats['available'])

    def test_slow_guest_is_waited_for_a_stopped_one_is_not(self):
        # A loaded host: libvirtd takes a second to reach a healthy guest,
        # whose monitor stays free meanwhile. Its read of its own is late,
        # but libvirt says it is not held by a QEMU: it is waited for,
        # while the stopped guest's call is given up at once.
        frozen, slow, healthy = (FakeDomain('f'), FakeDomain('s'),
                                 FakeDomain('h'))
        host, conn = self._host(frozen, slow, healthy, timeout=5.0)
        frozen.freeze()
        slow.delay = 1.0
        records = self._poll(host, timeout=5.0)
        self.assertEqual(200000, records['s'].stats['available'])
        self.assertIsNone(records['s'].monitor_busy)
        self.assertEqual(200000, records['h'].stats['available'])
        self.assertIsNotNone(records['f'].monitor_busy)

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
        self.assertEqual(1, host.connections.free_requests())
        # four reads on each; on the first, the calls that follow too
        # (the skipped guests read again): none on the stuck connection
        self.assertEqual([5, 4], [sum(c[0] == 'domainListGetStats'
                                      for c in fresh.calls)
                                  for fresh in self.opened])
        # The next poll: m4 found stuck too (its call has waited past
        # BRIEF_BUSY), the rest read at once.
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
        self.assertEqual(0, host.connections.free_requests())
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

    def test_a_connection_with_a_stuck_call_is_set_aside(self):
        # (stuck on guests gone since, so the poll reads only chunks)
        gone = [FakeDomain('gone-1'), FakeDomain('gone-2')]
        host, conn = self._host(*[FakeDomain(f'g{i}') for i in range(8)])
        self.addCleanup(lambda: [d.thaw() for d in gone])
        host.stats_workers = 4
        self._stick(host, conn, gone)
        self.assertEqual(3, host.connections.free_requests())
        conn.calls.clear()
        records = self._poll(host)
        # no call on it: a new connection, four chunks there (its fifth
        # place kept for the listing and the XML reads)
        self.assertEqual([], conn.calls)
        self.assertEqual(1, len(self.opened))
        self.assertEqual(4, sum(c[0] == 'domainListGetStats'
                                for c in self.opened[0].calls))
        self.assertEqual(8, sum(r.stats.get('available') == 200000
                                for r in records.values()))
        self.assertFalse(conn.closed)  # closed once its calls end
        for domain in gone:
            domain.thaw()
        self._settle(host)
        self._poll(host)
        self.assertTrue(conn.closed)

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
            self.assertLessEqual(self.spy.in_vain,
                                 stats_poll.PROBE_WAIT)
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
        # only the held chunk's first wait, not half the timeout
        self.assertLessEqual(self.spy.in_vain, stats_poll.FIRST_WAIT)
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
        self.assertLessEqual(self.spy.in_vain + self.spy.slept, 0.5)

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
        self.assertLessEqual(self.spy.in_vain, 1.0)
        self.assertIn('did not answer getAllDomainStats() within 1s',
                      str(e))
        # the daemon named, not the guests' QEMUs
        self.assertIn('so libvirtd itself is stuck: check that it runs and '
                      'is not stopped (kill -CONT it).', str(e))
        self.assertNotIn('QEMU', str(e))
        self.assertEqual(1, len(str(e).splitlines()))

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
        self.assertEqual(0, self.spy.in_vain)  # no new call was started
        self.assertEqual(calls, len(conn.calls))
        self.assertIn('has not answered 2 earlier calls', str(e))

    def test_figures_skipped(self):
        self.assertTrue(records.figures_skipped(SKIPPED))
        self.assertFalse(records.figures_skipped(HEALTHY))
        # test:///default gives no balloon figures at all: not skipped
        self.assertFalse(records.figures_skipped({'state.state': 1}))


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


class ScaleCountTest(test.TestCase):
    """What a poll asks of libvirt does not grow with the guests: at 200
    (and 400) synthetic guests, counted, not timed (tools/bench/scale.py
    times it up to 4,096).
    """

    def _calls(self, guests):
        self.useFixture(fixtures.MockPatch('os.cpu_count', return_value=2))
        # workers chosen as the driver chooses them by default (0: auto)
        fake = self.useFixture(fakelibvirt.FakeHost(*(
            FakeDomain(f'g{i}') for i in range(guests)), stats_workers=0))
        def calls():
            return [c if isinstance(c, str) else c[0] for conn in (
                fake.conn, *fake.opened) for c in conn.calls]
        fake.host.get_memory_stats()  # the first: learns the count
        before = len(calls())
        records = fake.host.get_memory_stats()
        self.assertEqual(guests, len(records))
        return calls()[before:]

    def test_libvirt_calls_per_poll(self):
        calls = self._calls(200)
        # a listing, then one bulk call per chunk (4 on 2 cores)
        self.assertEqual(['listAllDomains'] + ['domainListGetStats'] * 4,
                         calls)
        self.assertEqual(calls, self._calls(400))
