"""Floods of events cost one log line a minute, counted."""

import logging

import fixtures

from nova import test
from nova.exporter.web import rarelog
from nova.exporter.web import server as web_server


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class RareTest(test.TestCase):

    def test_rare_log_counts_what_it_did_not_say(self):
        clock = _Clock()
        logger = logging.getLogger('nova.tests.rare')
        said = self.useFixture(_Capture(logger)).records
        rare = rarelog.RareLog(logger, 60, clock)
        self.assertTrue(rare.warning('x', 'one'))
        for _ in range(41):
            self.assertFalse(rare.warning('x', 'one'))
        self.assertTrue(rare.warning('y', 'other kind'))
        clock.now += 61
        self.assertTrue(rare.warning('x', 'one'))
        self.assertEqual(['one', 'other kind',
                          'one (41 more like it in the last 61s)'],
                         [r.getMessage() for r in said])

    def test_asyncio_warnings_once_a_minute_without_traceback(self):
        clock = _Clock()
        logger = logging.getLogger('nova.tests.asyncio-like')
        capture = self.useFixture(_Capture(logger))
        logger.addFilter(rarelog.RareFilter(60, clock))
        for _ in range(427):
            try:
                raise ConnectionResetError('gone')
            except ConnectionResetError:
                logger.warning('socket.send() raised exception.',
                               exc_info=True)
        logger.info('a normal line')
        clock.now += 60
        logger.warning('socket.send() raised exception.')
        messages = [r.getMessage() for r in capture.records]
        self.assertEqual(['socket.send() raised exception.',
                          'a normal line',
                          'socket.send() raised exception. (426 more like '
                          'it in the last 60s)'], messages)
        self.assertIsNone(capture.records[0].exc_info)

    def test_quiet_asyncio_is_installed_once(self):
        first = rarelog.quiet_asyncio()
        self.addCleanup(logging.getLogger('asyncio').removeFilter, first)
        self.assertIs(first, rarelog.quiet_asyncio())


class LimitsTest(test.TestCase):

    def test_connections_follow_the_descriptors_and_the_memory(self):
        # the unit's LimitNOFILE=8192: the memory budget decides
        most = web_server.MEMORY_BUDGET // web_server.CONNECTION_BYTES
        self.assertEqual(4096, most)
        self.assertEqual((most, most // 4),
                         web_server.connection_limits(8192))
        self.assertEqual((960, 240), web_server.connection_limits(1024))
        self.assertEqual((960, 240), web_server.connection_limits(1024))
        self.assertEqual((16, 4), web_server.connection_limits(64))


class _Capture(fixtures.Fixture):
    """Records what a logger emits."""

    def __init__(self, logger):
        super().__init__()
        self.logger = logger
        self.records = []

    def _setUp(self):
        handler = logging.Handler()
        handler.emit = self.records.append
        self.logger.addHandler(handler)
        self.addCleanup(self.logger.removeHandler, handler)
        self.addCleanup(setattr, self.logger, 'propagate', True)
        self.addCleanup(self.logger.setLevel, self.logger.level)
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False
