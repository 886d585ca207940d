"""A frozen libvirtd (SIGSTOP) under the exporter and the commands.

Every libvirt call has a bound: scrapes say ``libvirt_up 0`` within the
poll timeout, commands end in one line naming the call, a SIGHUP reconcile
does not hold up SIGTERM, and an exporter started during the freeze serves
its first scrape in time. The daemon is always thawed (SIGCONT), even when
a test fails.
"""

import os
import signal
import time

from nova.tests import doc_table
from nova.tests.fixtures import private_libvirtd
from nova.tests.functional.operator import base


class FrozenDaemonTest(base.ExporterTestCase):

    def freeze_libvirtd(self):
        # Ours only: a host's libvirtd is never frozen.
        pid = private_libvirtd.PrivateLibvirtd.pid()
        self.addCleanup(os.kill, pid, signal.SIGCONT)
        os.kill(pid, signal.SIGSTOP)

    def timed(self, fn, *args, **kw):
        start = time.monotonic()
        result = fn(*args, **kw)
        return result, time.monotonic() - start

    def test_every_call_bounded_while_libvirtd_is_frozen(self):
        name = base.PREFIX + 'hang'
        self.boot_ok(name)
        url = self.start_exporter(extra='apply_stats_period = true\n')
        self.assertIn('libvirt_up 1.0', self.scrape(url))
        self.freeze_libvirtd()

        text, took = self.timed(self.scrape, url)
        self.assertIn('libvirt_up 0.0', text)
        self.assertLess(took, 6.5)  # the 5 s poll timeout, and a margin

        # An exporter whose connection opens during the freeze, told to
        # apply the period at start: its first scrape in time too (the
        # shipped scrape timeout is 10 s), its reconcile in the background.
        late = self.start_exporter(extra='apply_stats_period = true\n',
                                   wait=False)
        text, took = self.timed(self.wait_for, 'the late exporter',
                                lambda: self._try_scrape(late), 15, 0.1)
        self.assertIn('libvirt_up 0.0', text)

        # Commands: one line naming the call, within the bound.
        kernel, initrd = self.images['balloon']
        for args, bound in ((('memstats',), 7), (('set-period', '5',
                                                  '--all'), 7),
                            (('reconcile',), 7),
                            (('boot', base.PREFIX + 'never', '--kernel',
                              kernel, '--initrd', initrd), 7)):
            result, took = self.timed(self.nova_libvirt, *args, check=False)
            self.assertEqual(1, result.returncode, result.stderr)
            self.assertEqual(1, len(result.stderr.splitlines()),
                             result.stderr)
            self.assertIn('libvirt did not answer', result.stderr)
            self.assertLess(took, bound, args)
        doc_table.check(self, 'frozen-daemon-commands', 1, result.stderr)

        # SIGHUP starts a reconcile that cannot finish; SIGTERM still
        # stops the exporter within 2 s, and the reconcile changes nothing
        # afterwards. So does the one reconciling since its start.
        first, late_proc = self.exporters
        first.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        for proc in (first, late_proc):
            start = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(0, proc.wait(timeout=10))
            self.assertLess(time.monotonic() - start, 2)

    def _try_scrape(self, url):
        try:
            return self.scrape(url, timeout=12)
        except OSError:
            return None
