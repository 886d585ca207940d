"""The base TestCase's own behaviour (nova/test.py)."""

import logging

import fixtures

from nova import test


class LogCaptureTest(test.TestCase):

    def test_info_is_captured_and_library_debug_is_not(self):
        logging.getLogger('asyncio').debug('Using selector: noise')
        logging.getLogger('nova.x').info('said')
        self.assertEqual('    INFO [nova.x] said\n',
                         self.log_fixture.output)

    def test_os_debug_asks_for_debug(self):
        self.useFixture(fixtures.EnvironmentVariable('OS_DEBUG', '1'))
        self._fake_logs()
        logging.getLogger('asyncio').debug('wanted')
        self.assertIn('DEBUG [asyncio] wanted', self.log_fixture.output)
