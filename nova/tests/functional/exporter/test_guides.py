"""The operator's guides run as printed.

Every console command of "The first ten minutes" and of the exporter
guide's "Running it" is run as written, from the top of the tree, each a
process of its own: ``tools/nova-libvirt ...`` to its end, a server
(``tools/nova-libvirt-exporter ...``) until it serves, then the commands
after it (``curl ...``), whose printed output must be in theirs, then it is
stopped. They run in a network namespace of the test's own (so port 9179
is the test's, whoever else listens on this host) on libvirt's test driver
and a state directory of the test's own, given through oslo.config's
environment variables: the commands are the pages' own. ``install-service``
is not run here: the booted-systemd test runs it.
"""

import os
import re
import signal
import subprocess
import time

import fixtures

from nova import test
from nova.tests import doc_pages

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))))
ADMIN = os.path.join(TOP, 'doc', 'source', 'admin')
SERVERS = ('tools/nova-libvirt-exporter',)
NOT_HERE = ('tools/install-service',)


class GuidesTest(test.TestCase):

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.Timeout(600, gentle=True))
        self.tmp = self.useFixture(fixtures.TempDir()).path
        if os.geteuid() != 0:
            self.skipTest('a network namespace of its own needs root')
        holder = subprocess.Popen(['unshare', '--net', 'sleep', '600'])
        self.addCleanup(lambda: (holder.kill(), holder.wait()))
        self.netns = str(holder.pid)
        ours = os.readlink('/proc/self/ns/net')

        def unshared():
            try:
                return os.readlink(f'/proc/{holder.pid}/ns/net') != ours
            except OSError:
                return False
        # (before unshare(), nsenter would enter this host's namespace)
        self.wait_for('a network namespace of its own', unshared, 10, 0.05)
        self.assertEqual(0, self._run('ip link set lo up').returncode)
        self.env = dict(os.environ, HOME=self.tmp,
                        OS_DEFAULT__STATE_PATH=f'{self.tmp}/state',
                        OS_LIBVIRT__CONNECTION_URI='test:///default')

    def _run(self, command: str, **popen):
        argv = ['nsenter', '-t', self.netns, '-n', 'bash', '-c', command]
        if popen:
            return subprocess.Popen(argv, cwd=TOP, env=self.env, **popen)
        return subprocess.run(argv, cwd=TOP, env=getattr(
            self, 'env', None), capture_output=True, text=True,
            timeout=300)

    def run_page(self, text: str) -> list[str]:
        """Run every command of ``text`` as the page says; the commands
        run.
        """
        ran = []
        server = None
        for block in doc_pages.console_blocks(text):
            for command, printed in block:
                if command.startswith(NOT_HERE):
                    continue
                ran.append(command)
                if command.startswith(SERVERS):
                    self._stop(server)
                    server = self._serve(command)
                    continue
                result = self._run(command)
                self.assertEqual(0, result.returncode,
                                 f'{command}: {result.stderr[-2000:]}')
                for line in printed:
                    self.assertIn(line, result.stdout, command)
        self._stop(server)
        return ran

    def _serve(self, command: str):
        log = open(os.path.join(self.tmp, 'server.log'), 'w+')
        self.addCleanup(log.close)
        # a session of its own: the stop reaches tini and what it runs
        proc = self._run(command, stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True)
        self.addCleanup(self._stop, proc)
        port = re.search(r'--listen-port (\d+)', command)
        url = f'http://127.0.0.1:{port.group(1) if port else 9179}/-/healthy'

        def serving():
            with open(log.name) as f:
                self.assertIsNone(proc.poll(), f.read())
            return self._run(f'curl -sf {url}').returncode == 0
        try:
            self.wait_for(f'{command} to serve', serving, 120)
        except AssertionError:
            with open(log.name) as f:
                raise AssertionError(
                    f'{command} did not serve: {f.read()}') from None
        return proc

    @staticmethod
    def _stop(proc):
        """SIGTERM to the server's whole session, SIGKILL to what is left
        of it after 30 s: a server killed alone would leave the exporter
        its tini started.
        """
        if proc is None or proc.returncode is not None:
            return

        def session_alive() -> bool:
            proc.poll()  # reaps the leader once it exits
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return False
            return True
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + 30
            while session_alive() and time.monotonic() < deadline:
                time.sleep(0.1)
            if not session_alive():
                break
        proc.wait()

    def test_the_first_ten_minutes(self):
        with open(os.path.join(ADMIN, 'first-minutes.rst')) as f:
            ran = self.run_page(f.read())
        self.assertEqual(['tools/nova-libvirt memstats',
                          'tools/nova-libvirt-exporter',
                          'curl -s http://127.0.0.1:9179/metrics'], ran)

    def test_the_exporter_guides_first_commands(self):
        with open(os.path.join(ADMIN, 'exporter.rst')) as f:
            ran = self.run_page(doc_pages.section(f.read(), 'Running it'))
        self.assertEqual(3, len(ran), ran)
        self.assertTrue(all(c.startswith('tools/nova-libvirt-exporter')
                            for c in ran), ran)
