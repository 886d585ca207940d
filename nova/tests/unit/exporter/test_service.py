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


class _Sock:
    def __init__(self, host, port=9179):
        self._name = (host, port)

    def getsockname(self):
        return self._name


class ExposedTest(test.TestCase):
    """One WARNING at start when served beyond this host without TLS or
    passwords (issue 40: the exporter said nothing on 0.0.0.0).
    """

    def test_beyond_this_host_without_tls_or_passwords(self):
        said = service.exposed([_Sock('0.0.0.0')], tls=False,
                               passwords=False)
        self.assertEqual(
            'Listening on 0.0.0.0:9179 without TLS or basic_auth_users: '
            "anyone who can reach this host reads every guest's figures "
            'in clear; set [exporter] web_config_file (tls_server_config, '
            'basic_auth_users), or listen_address = 127.0.0.1.', said)
        self.assertIn('without basic_auth_users:', service.exposed(
            [_Sock('10.0.0.5')], tls=True, passwords=False))
        self.assertIn('[::]:9179 without TLS:', service.exposed(
            [_Sock('::')], tls=False, passwords=True))

    def test_nothing_on_loopback_or_with_both(self):
        for socks, tls, passwords in (([_Sock('127.0.0.1')], False, False),
                                      ([_Sock('::1')], False, False),
                                      ([_Sock('0.0.0.0')], True, True)):
            self.assertIsNone(service.exposed(socks, tls, passwords))
