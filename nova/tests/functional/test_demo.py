"""The README's main job, run as a command on real QEMU."""

import os
import signal
import subprocess
import sys

import fixtures

from nova.tests import doc_table
from nova.tests.functional.libvirt import base


class DemoCommandTest(base.RealQemuTestCase):

    def _start_demo(self, *args):
        # Its own state_path, so its own embedded root: only one process
        # may hold the one the other functional tests use.
        state = self.useFixture(fixtures.TempDir(rootdir='/tmp')).path
        conf = os.path.join(state, 'nova.conf')
        with open(conf, 'w') as f:
            f.write(f'[DEFAULT]\nstate_path = {state}\n')
        self.addCleanup(self._no_demo_guests_left)
        demo = subprocess.Popen(
            [sys.executable, '-m', 'nova.cmd.libvirt', '--config-file',
             conf, 'demo', *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(self._stop, demo)
        return demo

    @staticmethod
    def _stop(demo):
        if demo.poll() is None:
            demo.terminate()  # the demo removes its guests on SIGTERM
            demo.communicate(timeout=60)

    def test_sighup_cleans_up(self):
        demo = self._start_demo('--period', '2', '--periods', '10')
        seen = []
        for line in demo.stderr:  # bounded by the test's Timeout fixture
            seen.append(line)
            if line.startswith('watching statistics'):
                break
        demo.send_signal(signal.SIGHUP)  # the terminal went away
        out, err = demo.communicate(timeout=60)
        err = ''.join(seen) + err
        doc_table.check(self, 'demo-sighup', demo.returncode, err)
        self.assertIn('removed memstats-demo-off', err)

    def test_demo(self):
        demo = self._start_demo('--period', '2', '--periods', '2')
        try:
            out, err = demo.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            demo.terminate()  # the demo removes its guests on SIGTERM
            out, err = demo.communicate(timeout=60)
            self.fail(f'demo did not finish in 180 s:\n{err}')
        self.assertEqual(0, demo.returncode, err)
        self.assertIn('<stats period="2"/>', out)
        self.assertIn('<memballoon model="none"/>', out)
        self.assertIn('memstats-demo-on: fresh figures', out)
        self.assertIn('memstats-demo-off: balloon-disabled', out)
        self.assertIn('removed memstats-demo-on', err)
        self.assertIn('removed memstats-demo-off', err)

    def _no_demo_guests_left(self):
        left = {name: base.qemu_processes(name)
                for name in ('memstats-demo-on', 'memstats-demo-off')}
        for pids in left.values():
            for pid in pids:  # last resort: the demo could not clean up
                os.kill(pid, signal.SIGKILL)
        self.assertEqual({'memstats-demo-on': [], 'memstats-demo-off': []},
                         left)
