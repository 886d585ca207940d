"""tools/sweep-run as tools/run-tests runs it at the end of a run: it stops
the processes of that run's directory only, frozen ones too, and says so.
"""

import os
import signal
import subprocess
import sys
import time

import fixtures

from nova import test

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
SWEEP = os.path.join(TOP, 'tools', 'sweep-run')


class SweepRunTest(test.TestCase):

    def start(self, argv, env=None) -> subprocess.Popen:
        proc = subprocess.Popen(argv, env=env, start_new_session=True)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        self.addCleanup(lambda: proc.poll() is None and
                        os.kill(proc.pid, signal.SIGCONT))
        return proc

    def sweep(self, directory, env=None) -> subprocess.CompletedProcess:
        # with the virtualenv's python, as tools/run-tests runs it
        return subprocess.run([sys.executable, SWEEP, directory],
                              capture_output=True, text=True, timeout=60,
                              env=env)

    def wait_gone(self, proc, timeout=20) -> bool:
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        return proc.poll() is not None

    def test_stops_the_runs_processes_and_no_other(self):
        run = self.useFixture(fixtures.TempDir()).path
        other = self.useFixture(fixtures.TempDir()).path
        inherited = self.start(['sleep', '600'],
                               env=dict(os.environ, TMPDIR=run))
        named = self.start([sys.executable, '-c', 'import time; '
                            'time.sleep(600)', f'{run}/guest.img'])
        frozen = self.start(['sleep', '600'],
                            env=dict(os.environ, TMPDIR=run))
        os.kill(frozen.pid, signal.SIGSTOP)
        # another run's, and a process only near the name
        theirs = self.start(['sleep', '600'],
                            env=dict(os.environ, TMPDIR=other))
        near = self.start(['sleep', '600'],
                          env=dict(os.environ, TMPDIR=run + 'x'))

        # run as run-tests runs it: with the run's TMPDIR itself
        result = self.sweep(run, env=dict(os.environ, TMPDIR=run))
        self.assertEqual(0, result.returncode, result.stderr)
        for proc in (inherited, named, frozen):
            self.assertTrue(self.wait_gone(proc), proc.args)
        self.assertIsNone(theirs.poll())
        self.assertIsNone(near.poll())
        line, = result.stderr.splitlines()
        self.assertTrue(line.startswith(
            'sweep-run: stopped 3 processes the tests left running: '),
            line)
        for proc in (inherited, named, frozen):
            self.assertIn(f'({proc.pid})', line)

    def test_nothing_left_is_said_by_nothing(self):
        run = self.useFixture(fixtures.TempDir()).path
        result = self.sweep(run)
        self.assertEqual((0, ''), (result.returncode, result.stderr))

    def test_a_relative_directory_is_refused(self):
        result = self.sweep('nlv-run-x')
        self.assertEqual(2, result.returncode)
        self.assertIn('absolute directory', result.stderr)
