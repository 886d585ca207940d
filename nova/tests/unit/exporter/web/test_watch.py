"""The web configuration in force follows its files, as the toolkit's
does: a changed file applies to the next connection, without a signal.
"""

import os

import fixtures

from nova import test
from nova.exporter.web import config as web_config
from nova.exporter.web import watch


class CurrentTest(test.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.path = os.path.join(self.tmp, 'web.yml')
        self.write('http_server_config:\n  headers:\n'
                   '    X-Frame-Options: deny\n')
        self.loads = 0

        def load():
            self.loads += 1
            return web_config.load(self.path), None
        self.current = watch.Current(load)

    def write(self, text):
        with open(self.path, 'w') as f:
            f.write(text)
        # a new modification time even within the clock's resolution
        st = os.stat(self.path)
        os.utime(self.path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))

    def test_read_again_only_when_a_file_changed(self):
        for _ in range(5):
            self.current.for_connection()
        self.assertEqual(1, self.loads)
        self.write('http_server_config:\n  headers:\n'
                   '    X-Frame-Options: sameorigin\n')
        self.current.for_connection()
        self.assertEqual(2, self.loads)
        self.assertEqual((('X-Frame-Options', 'sameorigin'),),
                         self.current.config.headers)
        self.current.for_connection()
        self.assertEqual(2, self.loads)

    def test_a_broken_file_keeps_the_last_good_one_and_says_so_once(self):
        logs = self.useFixture(fixtures.FakeLogger(
            name='nova.exporter.web.watch'))
        self.write('http_server_config: [\n')
        for _ in range(3):
            self.current.for_connection()
        self.assertEqual(2, self.loads)  # not read again until it changes
        self.assertEqual((('X-Frame-Options', 'deny'),),
                         self.current.config.headers)
        self.assertEqual(1, logs.output.count('the last good one stays'))
        self.write('')
        self.current.for_connection()
        self.assertEqual((), self.current.config.headers)

    def test_switching_to_https_needs_a_restart(self):
        logs = self.useFixture(fixtures.FakeLogger(
            name='nova.exporter.web.watch'))
        self.current = watch.Current(lambda: (web_config.WebConfig(
            tls=web_config.TLSSettings(cert=b'', key=b''),
            fingerprint='x'), 'tls'))
        self.current._load = lambda: (web_config.load(self.path), None)
        self.assertFalse(self.current.reload())
        self.assertEqual('tls', self.current.tls)
        self.assertIn('needs a restart', logs.output)
