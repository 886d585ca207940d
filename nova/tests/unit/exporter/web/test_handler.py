"""The toolkit's handler: rate limit, headers, basic auth as Go reads it,
and password checks remembered and queued fairly. Checks are counted, not
timed: a fake check function stands in for bcrypt.
"""

import asyncio
import base64
import concurrent.futures
import threading

from nova import test
from nova.exporter.web import config as web_config
from nova.exporter.web import handler as web_handler
from nova.exporter.web import messages
from nova.tests.fixtures.exporter import bcrypt_hash


def _basic(user, password) -> bytes:
    return b'Basic ' + base64.b64encode(f'{user}:{password}'.encode())


class BasicCredentialsTest(test.TestCase):

    def test_as_go_reads_the_header(self):
        for value, expected in (
                (_basic('prom', 'pw'), ('prom', b'pw')),
                (_basic('prom', 'a:b'), ('prom', b'a:b')),
                (b'BASIC ' + _basic('u', 'p')[6:], ('u', b'p')),
                (b'Basic  ' + _basic('u', 'p')[6:], None),  # two spaces
                (b'Basic ' + _basic('u', 'p')[6:] + b' ', None),
                (b'Bearer abc', None),
                (b'Basic ', None),
                (b'Basic !!!', None),
                (b'Basic ' + base64.b64encode(b'nocolon'), None),
                (None, None)):
            self.assertEqual(expected,
                             web_handler.basic_credentials(value), value)

    def test_the_first_authorization_header_wins(self):
        request = messages.Request('GET', '/metrics', '', [
            (b'authorization', _basic('first', 'x')),
            (b'authorization', _basic('second', 'y'))])
        self.assertEqual(_basic('first', 'x'),
                         request.header(b'authorization'))

    def test_cache_keys_cannot_be_forged(self):
        # CVE-2022-46146: user "a$2y..." with password "x" is not user "a"
        # with password "$2y...x"
        key = web_handler.cache_key
        self.assertNotEqual(key('a$2y', b'h', b'x'),
                            key('a', b'h', b'$2yx'))
        self.assertNotEqual(key('a', b'h1', b'x'), key('a', b'h2', b'x'))


class _Checks:
    """A check function counting its calls, optionally held."""

    def __init__(self, good: bytes):
        self.good = good
        self.calls = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, password, hashed):
        self.gate.wait(10)
        self.calls.append(password if hashed != web_handler.DECOY_HASH
                          else (password, hashed))
        return password == self.good


class HandlerTestCase(test.TestCase):

    def setUp(self):
        super().setUp()
        self.pool = concurrent.futures.ThreadPoolExecutor(1)
        self.addCleanup(self.pool.shutdown)
        self.checks = _Checks(b'right')
        self.passwords = web_handler.Passwords(self.pool, self.checks)
        self.hash = bcrypt_hash('right').encode()
        self.config = web_config.WebConfig(users={'prom': self.hash})
        self.served = []

        async def app(request):
            self.served.append(request.path)
            return messages.text(200, b'ok\n')
        self.handler = web_handler.WebHandler(app, lambda: self.config,
                                              self.passwords)

    def run_async(self, coroutine):
        return asyncio.run(coroutine)

    def ask(self, user=None, password=None, peer='10.0.0.1',
            path='/metrics'):
        headers = [] if user is None else [
            (b'authorization', _basic(user, password))]

        self.let_in = []
        request = messages.Request('GET', path, '', headers, peer,
                                   on_let_in=self.let_in.append)

        async def one():
            return await self.handler(request)
        return self.run_async(one())


class WebHandlerTest(HandlerTestCase):

    def test_credentials_decide_before_the_app_is_asked(self):
        for user, password, status in ((None, None, 401),
                                       ('prom', 'wrong', 401),
                                       ('nobody', 'right', 401),
                                       ('prom', 'right', 200)):
            response = self.ask(user, password)
            self.assertEqual(status, response.status, (user, password))
            # let in, with its password checked, only when it passed
            self.assertEqual([True] if status == 200 else [], self.let_in)
            if status == 401:
                self.assertIn((b'www-authenticate',
                               b'Basic realm="nova-libvirt-exporter"'),
                              response.headers)
        self.assertEqual(['/metrics'], self.served)

    def test_healthy_needs_nothing_and_headers_go_everywhere(self):
        self.config = web_config.WebConfig(
            users={'prom': self.hash}, headers=(('X-Frame-Options',
                                                 'deny'),))
        response = self.ask(path='/-/healthy')
        self.assertEqual(200, response.status)
        self.assertEqual([False], self.let_in)  # let in, nothing checked
        self.assertIn((b'x-frame-options', b'deny'), response.headers)
        self.assertIn((b'x-frame-options', b'deny'),
                      self.ask().headers)  # the 401 too

    def test_rate_limit(self):
        self.config = web_config.WebConfig(
            rate_limit=web_config.RateLimit(3600.0, 2))
        statuses = []
        for _ in range(4):
            statuses.append(self.ask().status)
            # without passwords a request is let in, never verified
            self.assertEqual([False] if statuses[-1] == 200 else [],
                             self.let_in)
        self.assertEqual([200, 200, 429, 429], statuses)
        self.assertEqual(200, self.ask(path='/-/healthy').status)

    def test_an_unknown_user_costs_an_ordinary_check(self):
        costly = b'$2y$18$' + self.hash[7:]
        self.config = web_config.WebConfig(users={'prom': self.hash,
                                                  'other': costly})
        self.assertEqual(401, self.ask('nobody', 'right').status)
        # checked against the decoy, cost 10, not the file's cost 18
        self.assertEqual([(b'right', web_handler.DECOY_HASH)],
                         self.checks.calls)
        self.assertEqual(b'$2b$10$', web_handler.DECOY_HASH[:7])
        # ... which no password passes, even one bcrypt would take
        self.checks.good = b'right'
        self.assertEqual(401, self.ask('nobody', 'right2').status)

    def test_verified_credentials_survive_a_reload(self):
        self.assertEqual(200, self.ask('prom', 'right').status)
        # a renewed certificate: a new file, the same user and hash
        self.config = web_config.WebConfig(users={'prom': self.hash},
                                           fingerprint='new')
        self.passwords.keep_only(self.config.users)
        self.assertEqual(200, self.ask('prom', 'right').status)
        self.assertEqual(1, len(self.checks.calls))
        # a changed hash is checked again
        self.config = web_config.WebConfig(
            users={'prom': bcrypt_hash('right').encode()})
        self.passwords.keep_only(self.config.users)
        self.assertEqual(200, self.ask('prom', 'right').status)
        self.assertEqual(2, len(self.checks.calls))

    def test_failures_cannot_evict_a_success(self):
        self.assertEqual(200, self.ask('prom', 'right').status)
        for i in range(web_handler.Passwords.REFUSED + 100):
            self.ask('prom', f'guess-{i}', peer=f'10.1.{i // 250}.{i % 250}')
        calls = len(self.checks.calls)
        self.assertEqual(200, self.ask('prom', 'right').status)
        self.assertEqual(calls, len(self.checks.calls))


class PasswordQueueTest(HandlerTestCase):

    def test_addresses_take_turns_and_a_flood_is_shed_by_address(self):
        self.checks.gate.clear()  # hold the first check
        per = web_handler.Passwords.PER_ADDRESS

        async def flood():
            tasks = [asyncio.ensure_future(self.handler(
                messages.Request('GET', '/metrics', '', [
                    (b'authorization', _basic('prom', f'guess-{i}'))],
                    '10.0.0.66'))) for i in range(per + 5)]
            await asyncio.sleep(0.05)
            scraper = asyncio.ensure_future(self.handler(
                messages.Request('GET', '/metrics', '', [
                    (b'authorization', _basic('prom', 'right'))],
                    '10.0.0.1')))
            await asyncio.sleep(0.05)
            self.checks.gate.set()
            return await asyncio.gather(*tasks), await scraper
        guesses, scrape = self.run_async(flood())
        statuses = [r.status for r in guesses]
        # one check runs, PER_ADDRESS wait; the rest are shed at once
        self.assertEqual(per + 1, statuses.count(401))
        self.assertEqual(4, statuses.count(429))
        self.assertEqual(200, scrape.status)
        # the scraper's address took its turn after one more of the
        # flood's, not after all of them
        self.assertEqual(b'right', self.checks.calls[2])

    def test_the_same_credentials_at_once_cost_one_check(self):
        self.checks.gate.clear()

        async def many():
            tasks = [asyncio.ensure_future(self.handler(
                messages.Request('GET', '/metrics', '', [
                    (b'authorization', _basic('prom', 'right'))],
                    f'10.0.0.{i}'))) for i in range(30)]
            await asyncio.sleep(0.05)
            self.checks.gate.set()
            return await asyncio.gather(*tasks)
        self.assertEqual([200] * 30, [r.status for r in
                                      self.run_async(many())])
        self.assertEqual(1, len(self.checks.calls))
