"""The exporter's web surface under attack, as a process, with real
clients: each attack of nova/tests/fixtures/attacks.py (what the exporter
toolkit's node_exporter holds, tools/bench/exporter_attacks.py measures both)
runs for a bounded time against ``nova-libvirt-exporter`` with TLS and
bcrypt basic auth (HTTP/2 prior knowledge: on the plain port), while a
scraper with valid credentials scrapes once a second on a new connection.

Each test asserts what the issues ask of every attack: the scraper gets
200 within 10 s for all but one scrape; the exporter's memory never passes
60 MB above rest and comes back within 20 MB of it, its file descriptors
back to rest, its CPU under 10 % of a core within 15 s after, and SIGTERM
still stops it (within a few seconds here; the bench records the figure).
The attacks of issue 39 (AttacksItWasNotShownTest) were found after the
server was built; they hold now by construction (the invariants of
nova/tests/unit/exporter/web/test_connection.py). The figures of the
full-length attacks are in exporter.rst, measured by the bench.
"""

import json
import os
import ssl
import subprocess
import sys

import fixtures

from nova import test
from nova.tests.fixtures import attacks
from nova.tests.fixtures import exporter as fakeexporter

USER, PASSWORD = 'prometheus', 'scrape-me'
DURATION = 8  # seconds of each attack, and of scrapes beside it


class AttackTestCase(test.TestCase):

    tls = True

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.certs = os.path.realpath(os.environ.get('TMPDIR', '/tmp')) + \
            f'/nlv-attack-{os.getpid()}'
        os.makedirs(cls.certs, exist_ok=True)
        cls.ca = fakeexporter.make_cert(cls.certs, 'ca')
        cls.cert = fakeexporter.make_cert(cls.certs, ca=cls.ca,
                                          san='IP:127.0.0.1,DNS:localhost')
        # cost 10, as "htpasswd -nBC 10" writes it: a check costs ~60 ms
        cls.hash = fakeexporter.bcrypt_hash(PASSWORD, cost=10)

    @classmethod
    def tearDownClass(cls):
        import shutil
        shutil.rmtree(cls.certs, ignore_errors=True)
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.useFixture(fixtures.Timeout(240, gentle=True))
        self.exporter = None

    def serve(self, users: bool = True, nofile: int | None = None,
              guests: int = 0) -> None:
        """The exporter as a process: TLS (unless plain), ``users``: basic
        auth; ``nofile``: its file-descriptor limit; ``guests``: that many
        on libvirt's test driver (else its default host).
        """
        web = f'basic_auth_users:\n  {USER}: {self.hash}\n' if users \
            else ''
        if self.tls:
            web = (f'tls_server_config:\n  cert_file: {self.cert[0]}\n'
                   f'  key_file: {self.cert[1]}\n') + web
        uri = fakeexporter.test_driver_uri(self.tmp, guests) if guests \
            else 'test:///default'
        self.exporter = self.useFixture(fakeexporter.ExporterProcess(
            self.tmp, web, uri=uri, nofile=nofile))
        self.assertIsNone(self.exporter.proc.poll(), self.exporter.log())
        self.pid = self.exporter.proc.pid
        context = ssl.create_default_context(cafile=self.ca[0]) \
            if self.tls else None
        self.scraper = attacks.Scraper('127.0.0.1', self.exporter.port,
                                       context,
                                       (USER, PASSWORD) if users else None)
        self.assertEqual(200, self.scraper.once()[0])
        self.probe = attacks.Probe(self.pid)

    def attack(self, name: str, *args, during=None,
               at_least: tuple[str, int] | None = None,
               **serve) -> dict:
        """Run attack ``name`` beside the scraper and check the bounds;
        ``during()`` is called while it runs; ``at_least`` (KEY, N): the
        attack must count N of KEY, and on a loaded host goes on until it
        has (at most attacks.GRACE seconds more); ``serve``: how the
        exporter runs (``serve()``). What the attack counted.
        """
        if self.exporter is None:
            self.serve(**serve)
        rest = self.wait_for('the exporter at rest', self._at_rest, 15)
        self.probe.start()
        self.scraper.start()
        attacker = subprocess.Popen(
            [sys.executable, '-m', 'nova.tests.fixtures.attacks', name,
             '--port', str(self.exporter.port), '--duration',
             str(DURATION), *(['--tls'] if self.tls else []),
             *(['--user', USER] if serve.get('users', True) else []),
             *args,
             *(['--at-least', '%s=%d' % at_least] if at_least else [])],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: attacker.poll() is None and attacker.kill())
        if during is not None:
            during()
        out, err = attacker.communicate(
            timeout=DURATION + attacks.GRACE + 60)
        self.scraper.stop()
        self.probe.stop()
        self.assertEqual(0, attacker.returncode, err)
        counts = json.loads(out)
        if at_least is not None:
            key, n = at_least
            self.assertGreaterEqual(counts.get(key, 0), n, f'{name}: {counts}')
        results = self.scraper.results
        # the scraper ran beside the attack: one scrape a second when
        # answers are quick, fewer when a loaded host slows the handshakes
        # (each within the 10 s bound below)
        self.assertGreaterEqual(len(results), 3, f'{name}: {results}')
        self.assertGreaterEqual(self.scraper.good, len(results) - 1,
                                f'{name}: {results}')
        self.assertLessEqual(self.probe.peak_rss, rest[1] + 60, name)
        # afterwards: CPU back under a tenth of a core, memory and
        # descriptors back to rest
        self.wait_for('the exporter idle again',
                      lambda: self.probe.cpu_share(1.0) < 0.10, 15, 0)
        self.wait_for('descriptors back to rest',
                      lambda: attacks.fds(self.pid) <= rest[2], 15)
        self.assertLessEqual(attacks.rss_mb(self.pid), rest[1] + 20, name)
        self.assertEqual(200, self.scraper.once()[0])
        self.stops()
        return counts

    def _at_rest(self):
        self.assertIsNone(self.exporter.proc.poll(), self.exporter.log())
        if self.probe.cpu_share(0.5) < 0.10:
            return self.probe.sample()
        return None

    def stops(self):
        self.exporter.proc.terminate()
        self.assertEqual(0, self.exporter.proc.wait(5))
        log = self.exporter.log()
        self.assertNotIn('Traceback', log)
        self.assertIn('Stopped.', log)


class TLSAttacksTest(AttackTestCase):

    def test_clienthello_then_junk(self):
        self.attack('hello-junk', at_least=('connections', 201))
        # refused handshakes: one line a minute, counted
        self.assertEqual(1, self.exporter.log().count('Refused a client'))

    def test_idle_connections_from_four_addresses(self):
        counts = self.attack('idle')
        self.assertEqual(1024, counts['connections'])

    def test_raw_clienthellos(self):
        self.attack('hellos', at_least=('connections', 601))

    def test_http2_rapid_reset(self):
        # counted a batch of 100 at a time: at least one batch sent
        self.attack('rapid-reset', at_least=('resets', 100))

    def test_request_body_to_healthy(self):
        self.attack('body', at_least=('connections', 11))

    def test_clients_that_reset_while_answered(self):
        self.attack('resets', '--password', PASSWORD)
        log = self.exporter.log()
        self.assertLessEqual(log.count('socket.send() raised'), 1)

    def test_password_flood_and_a_reload_never_refuse_the_scraper(self):
        def renew_certificate():
            # a renewed certificate: the file changes, the users do not
            self.wait_for('some guesses',
                          lambda: len(self.scraper.results) >= 3, 30)
            fakeexporter.make_cert(self.certs, ca=self.ca,
                                   san='IP:127.0.0.1,DNS:localhost')
            # applied at a new connection, without a signal
            self.wait_for('the renewed certificate in use', lambda: (
                'Web configuration changed' in self.exporter.log()), 30)
        counts = self.attack('passwords', '--source', '127.0.0.2',
                             during=renew_certificate)
        self.assertGreater(counts.get('401', 0) + counts.get('429', 0), 50)
        self.assertEqual([], [r for r in self.scraper.results
                              if r[0] == 429])


class PlainAttacksTest(AttackTestCase):

    tls = False

    def test_http2_prior_knowledge_with_a_zero_window(self):
        counts = self.attack('h2-window0')
        self.assertEqual(100, counts['connections'])


class AttacksItWasNotShownTest(AttackTestCase):
    """Issue 39's attacks, on TLS (each failed before the server was
    bounded by construction).
    """

    def test_pipelined_requests_on_one_connection_read_back(self):
        counts = self.attack('pipeline', at_least=('answers', 10000))
        self.assertGreater(counts['requests'], counts['answers'] - 1)

    def test_pipelined_requests_answered_401(self):
        self.attack('pipeline-401', at_least=('answers', 5000))

    def test_pipelined_requests_all_answered_with_no_more_bytes(self):
        counts = self.attack('burst', at_least=('bursts_10000', 1))
        # every burst answered whole, the pair in one TLS record too
        self.assertEqual(counts['bursts_2'], counts.get('whole_2'))
        self.assertEqual(counts['bursts_10000'], counts.get('whole_10000'))

    def test_close_notify_after_half_a_head_ends_it_at_once(self):
        counts = self.attack('close-notify', at_least=('ended', 20))
        # ended as it arrives, not at the client timeout (10 s)
        self.assertLess(counts['held_ms'], 5000)

    def test_an_accept_version_that_is_not_numbers(self):
        counts = self.attack('accept-junk', '--password', PASSWORD,
                             at_least=('200', 30))
        self.assertEqual({'200'}, set(counts) - {'connections', 'errors'})
        self.assertNotIn('ERROR', self.exporter.log())

    def test_slow_readers_each_with_their_own_accept(self):
        counts = self.attack('slow-accepts', '--password', PASSWORD,
                             at_least=('connections', 100), guests=1000)
        self.assertGreater(counts.get('bytes_read', 0), 0)

    def test_the_cap_filled_by_clients_answered_once(self):
        # no passwords: an earlier 200 earns no place
        self.attack('cap-idle', at_least=('connections', 290),
                    users=False, nofile=350)
        self.assertIn('costs a scraper least', self.exporter.log())

    def test_the_cap_filled_by_slow_readers_of_401s(self):
        self.attack('cap-slow-401', at_least=('connections', 290),
                    nofile=350)
