"""The exporter's HTTP server proven by its invariants, on inputs chosen by
Hypothesis rather than by a list of attacks.

Each example is a client: requests (good, malformed, too large, HTTP/2,
with a body, asking to close, with credentials right, wrong or none, with
any Accept), its bytes cut anywhere (TLS records too), read back at any
pace with stalls, ended by nothing, a FIN, a close_notify, or a cut in the
middle of a request, on plain HTTP, TLS, TLS with a client certificate,
with or without basic auth. The real Connection and ServerConnection of a
real HTTPServer serve it through nova.tests.fixtures.http_transport (no
sockets, the loop's clock the test's), the toolkit's handler and the real
app in front of a fixed poll. At every step and at the end:

- **memory**: the bytes held for the connection never pass INPUT_BOUND
  (input not parsed, raw or in h11's buffer) and OUTPUT_BOUND (answers
  made and not taken, in the ServerConnection and the transport), even
  under thousands of pipelined requests;
- **answers**: every complete request is answered, in order, with the
  status it calls for (never a 500), up to the first that closes the
  connection; nothing is answered after it;
- **no stall**: once the client sent everything and reads, every answer
  comes without more bytes from it;
- **ends**: a FIN or close_notify, or an answer that closes, ends the
  connection once the answers before it were taken; without one, it stays.
"""

import asyncio
import base64
import concurrent.futures
import dataclasses
import itertools
import os
import shutil
import ssl
import tempfile

import hypothesis
from hypothesis import strategies as st

from nova import test
from nova.exporter import app
from nova.exporter import metrics
from nova.exporter.web import config as web_config
from nova.exporter.web import connection as web_connection
from nova.exporter.web import handler as web_handler
from nova.exporter.web import messages
from nova.exporter.web import protocol
from nova.exporter.web import table
from nova.exporter.web import tls as web_tls
from nova.tests.fixtures import exporter as fakeexporter
from nova.tests.fixtures import http_transport

# What a connection may hold of its client's bytes: its input window, and
# in h11 a head and one feed; of its answers: its output window, and the
# slack of a TLS handshake flight and records' overhead.
INPUT_BOUND = protocol.RAW_WINDOW + protocol.MAX_HEAD + protocol.FEED
OUTPUT_BOUND = web_connection.WRITE_WINDOW + 8 * 1024
EXAMPLES = int(os.environ.get('NOVA_HYPOTHESIS_EXAMPLES', '60'))
SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
    suppress_health_check=[hypothesis.HealthCheck.too_slow,
                           hypothesis.HealthCheck.data_too_large])
USER, RIGHT = 'prom', 'right'
ACCEPTS = (None, 'text/plain; version=x', 'text/plain; version=1.a',
           'application/openmetrics-text; version=1.0.0.7',
           'application/openmetrics-text; version=1.0.0; escaping=dots',
           'text/plain;version=1.0.0', '*/*', ';;;,=,')
PATHS = ('/metrics', '/-/healthy', '/', '/nope',
         '/metrics?name[]=libvirt_up&name[]=nothing')


class InlineExecutor(concurrent.futures.Executor):
    """Runs each call at once, on the loop's thread: a poll or an encode
    is done by the next turn of the loop.
    """

    def submit(self, fn, *args, **kwargs):
        future = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as e:  # handed to the awaiting task
            future.set_exception(e)
        return future


@dataclasses.dataclass(frozen=True)
class Spec:
    """One request a client writes."""

    kind: str = 'ok'  # ok, malformed, huge, h2
    method: str = 'GET'
    path: str = '/metrics'
    auth: str | None = None  # None, 'good', 'bad'
    accept: str | None = None
    close: bool = False
    body: bool = False

    def wire(self) -> tuple[bytes, int]:
        """(its bytes, the length of its head: what must arrive for it to
        be answered).
        """
        if self.kind == 'malformed':
            data = b'GET /metrics HTTP/1.1\r\nHost x\r\n\r\n'
            return data, len(data)
        if self.kind == 'huge':
            # past MAX_HEAD by more than a feed: h11 refuses a head only
            # while it is incomplete, and it is fed FEED bytes at a time
            data = (b'GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ' +
                    b'a' * (protocol.MAX_HEAD + protocol.FEED) +
                    b'\r\n\r\n')
            return data, len(data)
        if self.kind == 'h2':
            return b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 18
        lines = [f'{self.method} {self.path} HTTP/1.1', 'Host: x']
        if self.auth is not None:
            password = RIGHT if self.auth == 'good' else 'wrong'
            lines.append('Authorization: ' + basic(
                USER, password))
        if self.accept is not None:
            lines.append(f'Accept: {self.accept}')
        if self.close:
            lines.append('Connection: close')
        if self.body:
            lines.append('Content-Length: 5')
        head = ('\r\n'.join(lines) + '\r\n\r\n').encode()
        return head + (b'hello' if self.body else b''), len(head)

    def expected(self, passwords: bool) -> tuple[int, bool]:
        """(the status it calls for, whether the connection ends after
        it).
        """
        if self.kind == 'malformed':
            return 400, True
        if self.kind == 'huge':
            return 431, True
        if self.kind == 'h2':
            return 505, True
        ends = self.close or self.body
        if self.path == web_handler.HEALTHY_PATH:
            return (405 if self.method == 'POST' else 200), ends
        if passwords and self.auth != 'good':
            return 401, ends
        if self.method == 'POST':
            return 405, ends
        return (404 if self.path == '/nope' else 200), ends


def basic(user: str, password: str) -> str:
    return 'Basic ' + base64.b64encode(
        f'{user}:{password}'.encode()).decode()


def specs():
    return st.builds(
        Spec,
        kind=st.sampled_from(('ok',) * 8 + ('malformed', 'huge', 'h2')),
        method=st.sampled_from(('GET', 'GET', 'GET', 'HEAD', 'POST')),
        path=st.sampled_from(PATHS),
        auth=st.sampled_from((None, 'good', 'good', 'bad')),
        accept=st.sampled_from(ACCEPTS),
        close=st.sampled_from((False,) * 6 + (True,)),
        body=st.sampled_from((False,) * 8 + (True,)))


# a cut: bytes handed over at once (0: none this step); a read: bytes the
# client takes (0: a stall)
CUTS = st.lists(st.sampled_from((0, 1, 2, 5, 17, 100, 517, 1500, 4096,
                                 16384, 65536, 1 << 20)),
                min_size=1, max_size=12)
READS = st.lists(st.sampled_from((0, 0, 1, 7, 100, 1500, 16384, 65536,
                                  1 << 20)), min_size=1, max_size=12)
ENDS = st.sampled_from(('none', 'none', 'end', 'cut'))
TURNS = st.lists(st.sampled_from((1, 1, 2, 3, 200)), min_size=1,
                 max_size=6)


class ConnectionInvariantsTest(test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dir = tempfile.mkdtemp(prefix='nlv-invariants-')
        ca = fakeexporter.make_cert(cls.dir, 'ca')
        cls.ca = ca
        cls.cert = fakeexporter.make_cert(cls.dir, ca=ca,
                                          san='DNS:localhost')
        cls.client_cert = fakeexporter.make_cert(cls.dir, 'client', ca=ca,
                                                 san='DNS:scraper')
        # a real poll's families, 40 guests: a body of some 40 KB, larger
        # than one write window once a few answers are pipelined
        rows = [fakeexporter.make_row(f'guest-{i}', 'ok',
                                      fakeexporter.RAW)
                for i in range(40)]
        cls.families = metrics.families(rows) + metrics.host_families(
            True, 0.01)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)
        super().tearDownClass()

    def _read(self, path) -> bytes:
        with open(path, 'rb') as f:
            return f.read()

    def server_tls(self, kind: str):
        if kind == 'plain':
            return None
        settings = web_config.TLSSettings(
            cert=self._read(self.cert[0]), key=self._read(self.cert[1]),
            client_auth=('RequireAndVerifyClientCert'
                         if kind.startswith('client-cert') else
                         'NoClientCert'),
            client_ca=(self._read(self.ca[0])
                       if kind.startswith('client-cert') else None))
        return web_tls.ServerTLS.build(settings, 'web.yml')

    def client_context(self, kind: str):
        if kind == 'plain':
            return None
        context = ssl.create_default_context(cafile=self.ca[0])
        if kind == 'client-cert':
            context.load_cert_chain(*self.client_cert)
        return context

    def handler(self, passwords: bool):
        users = {USER: fakeexporter.bcrypt_hash(RIGHT).encode()} \
            if passwords else {}
        config = web_config.WebConfig(users=users)
        metrics_app = app.MetricsApp(lambda: self.families,
                                     InlineExecutor(), b'<html></html>')
        return web_handler.WebHandler(
            metrics_app, lambda: config,
            web_handler.Passwords(
                InlineExecutor(),
                lambda password, hashed: password == RIGHT.encode()))

    # -- one example ---------------------------------------------------------

    def serve(self, kind, passwords, requests, cuts, reads, end, cut_at,
              turns=(200,)):
        harness = http_transport.Harness(self.handler(passwords),
                                         self.server_tls(kind))
        self.addCleanup(harness.close)
        conn = harness.connect()
        transport = harness.transport
        client = http_transport.Client(self.client_context(kind))

        plaintext, heads, start = b'', [], 0
        for spec in requests:
            data, head = spec.wire()
            heads.append(start + head)
            plaintext += data
            start += len(data)
        if end == 'cut':
            cut_at = min(cut_at, len(plaintext))
            plaintext = plaintext[:cut_at]
        client.send(plaintext)
        client.methods[:] = [s.method if s.kind == 'ok' else 'GET'
                             for s in requests]

        def check_held():
            self.assertLessEqual(conn.http.held_input(), INPUT_BOUND)
            self.assertLessEqual(conn.http.held_output() +
                                 len(transport.written), OUTPUT_BOUND)

        outbox = bytearray()
        ending = end != 'none'
        ended = False  # close_notify (TLS) queued, then the FIN handed
        cuts = itertools.chain(cuts, itertools.repeat(1 << 20))
        reads = iter(reads)
        # turns of the loop between the client's steps: one lets a client
        # send again before the server answered all it holds
        turns = itertools.cycle(turns)
        quiet = 0
        for _ in range(400):
            outbox += client.wire()
            if ending and not ended and not client.pending and \
                    not outbox and (client.tls is None or
                                    client.handshaken):
                if client.tls is not None and client.failed is None:
                    outbox += client.close_notify()
                ended = True
            n, delivered = next(cuts), 0
            if n:
                delivered = transport.deliver(bytes(outbox[:n]))
                del outbox[:delivered]
            if ended and not outbox:
                transport.send_eof()
            harness.turn(next(turns))
            check_held()
            read = next(reads, 1 << 30)
            taken = transport.take(read)
            client.receive(taken)
            harness.turn(next(turns))
            check_held()
            # done: the script read to its end, and for a few steps
            # nothing was handed over either way
            quiet = 0 if delivered or taken else quiet + 1
            if transport.lost or (read >= 1 << 30 and quiet >= 4):
                break
        harness.settle()
        client.receive(transport.take(1 << 30))
        return harness, client, heads, plaintext

    def check(self, kind, passwords, requests, cuts, reads, end, cut_at,
              turns=(200,)):
        harness, client, heads, sent = self.serve(
            kind, passwords, requests, cuts, reads, end, cut_at, turns)
        transport = harness.transport
        statuses = [status for status, _, _ in client.responses]
        self.assertNotIn(500, statuses)
        if kind == 'client-cert-missing':
            # no certificate: refused in the handshake, nothing answered
            self.assertEqual([], statuses)
            self.assertTrue(transport.lost)
            return
        expected, closes = [], False
        for spec, head in zip(requests, heads):
            if head > len(sent):
                break  # cut short: never answered
            status, ends = spec.expected(passwords)
            expected.append(status)
            if ends:
                closes = True
                break
        if end == 'cut' and len(statuses) == len(expected) + 1 and \
                statuses[-1] == 431:
            # a head too large, cut past MAX_HEAD: refused before its end
            expected.append(431)
            closes = True
        self.assertEqual(expected, statuses,
                         f'{kind} {end} {requests}')
        if closes or end != 'none':
            self.assertTrue(transport.lost, 'the connection was not ended')
        else:
            self.assertFalse(transport.lost, 'the connection was ended')
        for (_, headers, body), spec in zip(client.responses,
                                                 requests):
            self.assertEqual(str(len(body)) if spec.method != 'HEAD'
                             or spec.kind != 'ok' else
                             headers['content-length'],
                             headers['content-length'])

    @SETTINGS
    @hypothesis.given(kind=st.sampled_from(('plain', 'tls', 'client-cert')),
                      passwords=st.booleans(),
                      requests=st.lists(specs(), min_size=1, max_size=8),
                      flood=st.sampled_from((0,) * 6 + (50, 3000)),
                      cuts=CUTS, reads=READS, end=ENDS,
                      cut_at=st.integers(0, 4000), turns=TURNS)
    def test_every_client_within_the_bounds(self, kind, passwords,
                                            requests, flood, cuts, reads,
                                            end, cut_at, turns):
        # ``flood``: that many more requests pipelined behind the others
        requests += [Spec(path=web_handler.HEALTHY_PATH)] * flood
        self.check(kind, passwords, requests, cuts, reads, end, cut_at,
                   turns)

    @SETTINGS
    @hypothesis.given(requests=st.lists(specs(), min_size=1, max_size=3),
                      cuts=CUTS, reads=READS)
    def test_a_client_without_its_certificate_is_refused(self, requests,
                                                         cuts, reads):
        self.check('client-cert-missing', False, requests, cuts, reads,
                   'none', 0)


class ConnectionTimeAndRankTest(test.TestCase):
    """Deadlines on the test's clock, and the rank each state reports to
    the table (nova.exporter.web.table).
    """

    def setUp(self):
        super().setUp()
        self.answers: list = []  # futures the app's answers wait for

        async def app(request):
            if request.path == '/slow':
                future = asyncio.get_running_loop().create_future()
                self.answers.append(future)
                await future
            return messages.Response(200, b'x' * 300_000)
        self.harness = http_transport.Harness(app, client_timeout=10)
        self.addCleanup(self.harness.close)
        self.conn = self.harness.connect()
        self.transport = self.harness.transport

    def send(self, data: bytes):
        self.transport.deliver(data)
        self.harness.settle()

    def rank(self):
        return self.harness.server.table.rank_of(self.conn)

    def test_an_idle_client_is_cut_at_its_deadline(self):
        self.harness.advance(9.9)
        self.assertFalse(self.transport.lost)
        self.harness.advance(0.2)
        self.assertTrue(self.transport.aborted)

    def test_a_head_sent_slowly_is_cut_at_its_deadline(self):
        head = b'GET /metrics HTTP/1.1\r\nHost: x\r\n'
        sent = 0
        for byte in range(len(head)):  # a byte a second: no reprieve
            self.send(head[byte:byte + 1])
            sent += 1
            self.harness.advance(1)
            if self.transport.lost:
                break
        self.assertEqual(10, sent)
        self.assertTrue(self.transport.aborted)
        self.assertNotIn(self.conn, self.harness.server.table)

    def test_a_client_that_takes_nothing_is_cut_and_ranked_last(self):
        self.send(b'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n')
        # a window written, then nothing taken: stalled
        self.assertEqual(web_connection.WRITE_WINDOW,
                         len(self.transport.written))
        # let in without a password checked: as cheap as a stranger
        self.assertEqual(table.STRANGER, self.rank())
        self.harness.advance(9.9)
        self.assertFalse(self.transport.lost)
        # each piece taken gives it its time again
        self.transport.take(30_000)
        self.harness.settle()
        self.harness.advance(9.9)
        self.assertFalse(self.transport.lost)
        self.harness.advance(0.2)
        self.assertTrue(self.transport.aborted)

    def test_an_answer_the_app_takes_long_over_is_waited_for_and_kept(self):
        self.send(b'GET /slow HTTP/1.1\r\nHost: x\r\n\r\n')
        # waiting for the app, not yet let in (no handler here to let it
        # in): a stranger; let in, it is kept
        self.assertEqual(table.STRANGER, self.rank())
        self.conn.http.answering.let_in(verified=True)
        self.assertIsNone(self.rank())
        self.harness.advance(120)  # the app's time is not the client's
        self.assertFalse(self.transport.lost)
        self.answers[0].set_result(None)
        self.harness.settle()
        while self.transport.written:
            self.transport.take(1 << 30)
            self.harness.settle()
        # answered; idle after a password checked: a reconnect to close
        self.assertEqual(table.IDLE, self.rank())
        self.assertFalse(self.transport.lost)
        self.harness.advance(10.1)
        self.assertTrue(self.transport.aborted)

    def test_a_fin_while_answered_ends_it_after_the_answer(self):
        self.send(b'GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /x HTTP/1.1\r\n')
        self.assertTrue(self.transport.send_eof())
        self.harness.settle()
        self.assertFalse(self.transport.lost)  # the answer is owed
        self.answers[0].set_result(None)
        self.harness.settle()
        client = http_transport.Client()
        client.methods.append('GET')
        for _ in range(20):
            client.receive(self.transport.take(1 << 30))
            self.harness.settle()
        self.assertEqual([200], [r[0] for r in client.responses])
        self.assertTrue(self.transport.lost)
        self.assertFalse(self.transport.aborted)
