"""Tests for nova.exporter.app: the routes, the landing page, and how
scrapes share polls (counted) and are answered 503 once it stops.
"""

import asyncio
import concurrent.futures
import threading

import fixtures
from prometheus_client import core

from nova import test
from nova.exporter import app
from nova.exporter.web import messages


def _request(path='/metrics', method='GET', headers=()):
    return messages.Request(method, path, '', list(headers), '127.0.0.1')


class AppTest(test.TestCase):

    def setUp(self):
        super().setUp()
        self.polls = 0
        self.release = threading.Event()
        self.release.set()
        self.executor = concurrent.futures.ThreadPoolExecutor(2)
        self.addCleanup(self.executor.shutdown)
        self.app = app.MetricsApp(
            self._poll, self.executor,
            app.landing_page('nova-libvirt-exporter', 'Guest memory.',
                             '1.2.3', [('/metrics', 'Metrics'),
                                       ('/-/healthy', 'Health')]))

    def _poll(self):
        self.release.wait(30)
        self.polls += 1
        family = core.GaugeMetricFamily('libvirt_up', 'up',
                                        value=self.polls)
        return [family]

    def run_all(self, *requests):
        async def go():
            return await asyncio.gather(*(self.app(r) for r in requests))
        return asyncio.run(go())

    def test_routes(self):
        got = self.run_all(_request('/-/healthy'), _request('/'),
                           _request('/nope'), _request(method='POST'),
                           _request('/metrics', 'HEAD'))
        self.assertEqual([200, 200, 404, 405, 200],
                         [r.status for r in got])
        self.assertEqual(app.HEALTHY, got[0].body)
        landing = got[1].body.decode()
        for words in ('<title>nova-libvirt-exporter</title>',
                      'Guest memory.', 'Version: 1.2.3',
                      '<a href="metrics">Metrics</a>',
                      '<a href="-/healthy">Health</a>'):
            self.assertIn(words, landing)
        self.assertEqual(1, self.polls)  # only /metrics polls

    def test_scrapes_during_a_poll_share_it(self):
        self.release.clear()

        async def go():
            first = asyncio.ensure_future(self.app(_request()))
            await asyncio.sleep(0.05)
            rest = [asyncio.ensure_future(self.app(_request()))
                    for _ in range(49)]
            await asyncio.sleep(0.05)
            self.release.set()
            return await asyncio.gather(first, *rest)
        got = asyncio.run(go())
        self.assertEqual(1, self.polls)
        self.assertEqual({b'libvirt_up 1.0'},
                         {r.body.split(b'\n')[2] for r in got})

    def test_a_scrape_after_a_poll_ended_gets_a_new_one(self):
        polls = []

        async def go():
            for _ in range(3):
                await self.app(_request())
                polls.append(self.polls)
        asyncio.run(go())
        self.assertEqual([1, 2, 3], polls)

    def test_any_spelling_of_a_request_costs_one_encoding(self):
        encodings = []
        real = app.encoding.encode

        def counted(*args):
            encodings.append(args[1:])
            return real(*args)
        self.useFixture(fixtures.MockPatchObject(app.encoding, 'encode',
                                                 counted))
        requests = [_request(headers=[(
            b'accept', f'application/openmetrics-text; version=1.0.0.{i}'
            .encode())]) for i in range(50)]
        requests += [messages.Request(
            'GET', '/metrics', f'name[]=libvirt_up&name[]=x{i}', [], '')
            for i in range(50)]
        got = self.run_all(*requests)
        self.assertEqual([200] * 100, [r.status for r in got])
        # one poll; one body for the Accept spellings, one for the filter
        self.assertEqual(1, self.polls)
        self.assertEqual(2, len(encodings), encodings)
        self.assertEqual(1, len({r.body for r in got[:50]}))

    def test_bodies_kept_for_a_poll_are_bounded(self):
        encodings = []
        real = app.encoding.encode

        def counted(*args):
            encodings.append(args[2])
            return real(*args)
        self.useFixture(fixtures.MockPatchObject(app.encoding, 'encode',
                                                 counted))
        families = [core.GaugeMetricFamily(f'f{i}', 'x', value=1)
                    for i in range(app.MAX_BODIES * 2)]
        self.app = app.MetricsApp(lambda: families, self.executor, b'')
        names = [f.name for f in families]
        # every filter once, the newest MAX_BODIES again, the first again:
        # all on one poll
        asked = names + names[-app.MAX_BODIES:] + names[:1]
        got = self.run_all(*(messages.Request(
            'GET', '/metrics', f'name[]={n}', [], '') for n in asked))
        self.assertEqual([200] * len(asked), [r.status for r in got])
        # the newest kept, the first encoded again: it was let go
        self.assertEqual([(n,) for n in names + names[:1]], encodings)

    def test_stopping_answers_waiting_scrapes_503(self):
        self.release.clear()

        async def go():
            waiting = [asyncio.ensure_future(self.app(_request()))
                       for _ in range(3)]
            await asyncio.sleep(0.05)
            self.app.stopping()
            got = await asyncio.gather(*waiting)
            self.release.set()
            return got
        got = asyncio.run(go())
        self.assertEqual([503] * 3, [r.status for r in got])

    def test_a_scrape_in_a_restart_s_last_second_gets_the_last_poll(self):
        # connected just before SIGTERM, its request after: answered from a
        # poll that ended under STOPPING_AGE ago (a restart refused it),
        # and no new poll starts
        clock = [1000.0]

        async def go():
            loop = asyncio.get_running_loop()
            loop.time = lambda: clock[0]  # the test's own loop
            first = await self.app(_request())
            self.app.stopping()
            clock[0] += app.STOPPING_AGE - 1
            recent = await self.app(_request())
            clock[0] += 2
            old = await self.app(_request())
            return first, recent, old
        first, recent, old = asyncio.run(go())
        self.assertEqual((200, 200, 503),
                         (first.status, recent.status, old.status))
        self.assertEqual(first.body, recent.body)
        self.assertEqual(1, self.polls)
