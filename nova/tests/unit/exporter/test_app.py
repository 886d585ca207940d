"""Tests for nova.exporter.app: the routes, the landing page, and how
scrapes share polls (counted) and are answered 503 once it stops.
"""

import asyncio
import concurrent.futures
import threading

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
