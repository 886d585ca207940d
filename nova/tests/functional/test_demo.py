"""The README's main job, run as a command on real QEMU."""

import os
import signal
import subprocess
import sys

import fixtures

from nova.tests import doc_table
from nova.tests.fixtures import private_libvirtd
from nova.tests.functional.libvirt import base

PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                    *['..'] * 3, 'doc', 'source', 'cli', 'nova-libvirt.rst')
# What the CLI page's Logs section says libvirt logs (warnings, errors).
DOCUMENTED_LOG_LINES = ('tainted: high-privileges',
                        '/dev/mem: No such file or directory',
                        'No access manager registered',
                        'At least one cgroup controller is required')


class DemoCommandTest(base.RealQemuTestCase):

    def _start_demo(self, *args):
        # Its own state_path, so its own embedded root: only one process
        # may hold the one the other functional tests use. libvirt's log
        # goes to a file of its own.
        state = self.useFixture(fixtures.TempDir(
            rootdir=private_libvirtd.RUN_TMP)).path
        conf = os.path.join(state, 'nova.conf')
        with open(conf, 'w') as f:
            f.write(f'[DEFAULT]\nstate_path = {state}\n')
        self.libvirt_log = os.path.join(state, 'libvirt.log')
        self.demo_state = state
        self.addCleanup(self._no_demo_guests_left)
        demo = subprocess.Popen(
            [sys.executable, '-m', 'nova.cmd.libvirt', '--config-file',
             conf, 'demo', *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ,
                     LIBVIRT_LOG_OUTPUTS=f'3:file:{self.libvirt_log}'))
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
        # each guest read against the period it asks for: no drift shown
        # (the option left at 0 once made the first guest "want" 0s), and
        # the second told the fix for its flavor, not for the option
        self.assertNotIn('wanted period', out)
        self.assertIn('its flavor extra spec hw:mem_stats_period_seconds '
                      'is 0: resize it to a flavor', ' '.join(out.split()))
        self.assertIn('removed memstats-demo-on', err)
        self.assertIn('removed memstats-demo-off', err)
        self._only_documented_libvirt_log_lines()

    def _only_documented_libvirt_log_lines(self):
        """Every warning and error libvirt logged is one the CLI page's
        Logs section lists.
        """
        with open(os.path.join(PAGE)) as f:
            logs = ' '.join(f.read().split('\nLogs\n', 1)[1].split())
        for line in DOCUMENTED_LOG_LINES:
            self.assertIn(line, logs)
        with open(self.libvirt_log) as f:
            lines = [line for line in f
                     if ': warning : ' in line or ': error : ' in line]
        self.assertTrue(lines)  # the log is where the test looks
        for line in lines:
            self.assertTrue(any(d in line for d in DOCUMENTED_LOG_LINES),
                            f'libvirt logged a line the CLI page does not '
                            f'list: {line}')

    def _no_demo_guests_left(self):
        left = {name: base.qemu_processes(name, self.demo_state)
                for name in ('memstats-demo-on', 'memstats-demo-off')}
        for pids in left.values():
            for pid in pids:  # last resort: the demo could not clean up
                os.kill(pid, signal.SIGKILL)
        self.assertEqual({'memstats-demo-on': [], 'memstats-demo-off': []},
                         left)
