"""Tests for nova.exporter.service's pure parts (the service itself runs
in nova/tests/functional/exporter, with servers and processes).
"""

import errno

from nova import test
from nova.exporter import service


class ListenErrorTest(test.TestCase):

    def test_each_error_says_what_to_do(self):
        for code, words in (
                (errno.EADDRINUSE, 'in use by another process: stop it or '
                                   'set [exporter] listen_port.'),
                (errno.EADDRNOTAVAIL, 'set [exporter] listen_address to one '
                                      'of its addresses'),
                (errno.EACCES, 'set [exporter] listen_port to 1024 or '
                               'above.'),
                (errno.EINVAL, 'check [exporter] listen_address and '
                               'listen_port.')):
            text = service._listen_error('10.9.9.9:80',
                                         OSError(code, 'why'))
            self.assertIn('10.9.9.9:80', text)
            self.assertIn(words, text)
            self.assertEqual(1, len(text.splitlines()))

    def test_settings_defaults_are_the_options(self):
        from nova.cmd import exporter as exporter_cmd
        import nova.conf
        conf = nova.conf.CONF
        conf([], default_config_files=[])
        self.addCleanup(conf.reset)
        self.assertEqual(service.Settings(), exporter_cmd.settings(conf))
