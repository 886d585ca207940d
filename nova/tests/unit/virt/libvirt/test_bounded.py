"""Tests for nova.virt.libvirt.bounded: worker threads kept for the next
calls, a stuck call never waited for past its bound (through a Host, which
keeps the cap on stuck calls).
"""

import concurrent.futures
import threading
import time

import fixtures

from nova import exception
from nova import test
from nova.virt.libvirt import bounded
from nova.virt.libvirt import host as libvirt_host


class WorkersTest(test.TestCase):

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

    def test_left_and_kept_back(self):
        self.useFixture(fixtures.MockPatch(
            'nova.virt.libvirt.bounded.time.monotonic', return_value=100.0))
        self.assertEqual(2.0, bounded.left(102.0))
        self.assertEqual(0.0, bounded.left(99.0))
        self.assertEqual(1.5, bounded.kept_back(102.0, 0.5))
        self.assertEqual(1.0, bounded.kept_back(102.0, 5))  # half at most
        self.assertEqual('5s', bounded.seconds_text(5.0))
        self.assertEqual('0.2s', bounded.seconds_text(0.2))


class CallsTest(test.TestCase):

    def test_a_call_is_a_future(self):
        calls = bounded.Calls(lambda count, age: AssertionError())
        call = calls.start(lambda: 7)
        self.assertIsInstance(call, concurrent.futures.Future)
        self.assertTrue(calls.waited(call, 10))
        self.assertEqual(7, call.result())

        def fail():
            raise ValueError('no')
        call = calls.start(fail)
        self.assertTrue(calls.waited(call, 10))
        self.assertRaises(ValueError, call.result)

    def test_stuck_calls_are_counted_and_capped(self):
        self.useFixture(fixtures.MockPatch(
            'nova.virt.libvirt.bounded.MAX_PENDING_CALLS', 2))
        release = threading.Event()
        self.addCleanup(release.set)
        refused = []

        def too_many(count, age):
            refused.append(count)
            return RuntimeError(f'{count} stuck')
        calls = bounded.Calls(too_many)
        stuck = [calls.start(release.wait, conn='c1') for _ in range(2)]
        for call in stuck:
            self.assertFalse(calls.waited(call, 0))
        self.assertEqual(['c1', 'c1'], [c.conn for c in calls.pending()])
        self.assertRaises(RuntimeError, calls.start, lambda: 1)
        self.assertEqual([2], refused)
        release.set()
        self.wait_for('the stuck calls to end', lambda: not calls.pending(),
                      10, 0.01)
        self.assertEqual(1, calls.start(lambda: 1).result(10))
