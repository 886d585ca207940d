"""A frozen guest on real QEMU: polls stay bounded, other guests fresh."""

import os
import subprocess
import sys
import time

from nova import exception
from nova import testimage
from nova.tests import doc_table
from nova.tests.functional.libvirt import base
from nova.virt.libvirt import host as libvirt_host
from nova.virt.libvirt import memstats


class FrozenGuestTest(base.RealQemuTestCase):

    def test_frozen_guest_is_unresponsive_others_ok(self):
        self.boot('ft-frozen', period=2)
        self.boot('ft-healthy', period=2)
        self.wait_for_console(testimage.READY_LINE)
        collector = memstats.MemoryStatsCollector(self.driver.host,
                                                  timeout=3)

        def both_ok():
            rows = collector.collect()
            states = {r.name: r.stats_state for r in rows}
            return states if set(states.values()) == {'ok'} else None
        self.wait_for('both guests to report', both_ok, 60)

        pid = self.freeze('ft-frozen')
        time.sleep(2.5)  # past a period: the healthy guest reports again
        for poll in range(3):
            start = time.monotonic()
            rows = {r.name: r for r in collector.collect()}
            elapsed = time.monotonic() - start
            self.assertLess(elapsed, 3.5, f'poll {poll} took {elapsed:.1f}s')
            frozen, healthy = rows['ft-frozen'], rows['ft-healthy']
            self.assertEqual('unresponsive', frozen.stats_state,
                             frozen.reason)
            self.assertIn('QEMU monitor', frozen.reason)
            self.assertNotIn('virtio_balloon', frozen.reason)
            self.assertIsNone(frozen.memory_usage_mb)
            self.assertEqual('ok', healthy.stats_state, healthy.reason)
            self.assertIsNotNone(healthy.memory_usage_mb)
            self.assertLess(time.time() - healthy.last_update, 5)
        doc_table.check(self, 'frozen-guest', 0,
                        f'{frozen.stats_state}: {frozen.reason}')
        self.assertLessEqual(self.driver.host.pending_calls, 1)

        self.thaw(pid)
        row = self.wait_for(
            'the thawed guest to answer again',
            lambda: (lambda r: r if r.stats_state == 'ok' else None)(
                collector.collect(['ft-frozen'])[0]), 30)
        self.assertIsNotNone(row.memory_usage_mb)


class EmbeddedRootInUseTest(base.RealQemuTestCase):

    def test_second_process_told_who_holds_the_root(self):
        conf = os.path.join(self.state_path, 'in-use.conf')
        self.addCleanup(os.unlink, conf)
        with open(conf, 'w') as f:
            f.write(f'[DEFAULT]\nstate_path = {self.state_path}\n'
                    '[libvirt]\nvirt_type = qemu\n'
                    f'connection_uri = {self.embed_uri}\n')
        # This process holds the root (the shared Host is open).
        result = subprocess.run(
            [sys.executable, '-m', 'nova.cmd.libvirt', '--config-file',
             conf, 'memstats'], capture_output=True, text=True, timeout=60)
        self.assertEqual(1, len(result.stderr.splitlines()), result.stderr)
        doc_table.check(self, 'root-in-use', result.returncode,
                        result.stderr)
        self.assertIn(f'(pid {os.getpid()}: ', result.stderr)

    def test_system_uri_in_a_process_that_opened_the_embedded_driver(self):
        # libvirt then routes every qemu:/// URI of this process to the
        # embedded driver, which refuses one without a root, whether or
        # not a libvirtd runs: the error says why and what to do.
        host = libvirt_host.Host('qemu:///system', timeout=10)
        self.addCleanup(host.close)
        e = self.assertRaises(exception.HypervisorUnavailable,
                              host.get_version)
        self.assertIn("Missing URI parameter 'root'", str(e))
        self.assertIn('use one connection URI per process', str(e))
        self.assertEqual(1, len(str(e).splitlines()))
