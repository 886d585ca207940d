"""Prometheus' web configuration file: what is accepted, what is refused in
one line, and how passwords are checked.
"""

import os
import ssl

import bcrypt
import fixtures

from nova import test
from nova.exporter import webconfig
from nova.tests.fixtures.exporter import bcrypt_hash
from nova.tests.fixtures.exporter import make_cert


class WebConfigTest(test.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.cert, self.key = make_cert(self.tmp)

    def load(self, text: str) -> webconfig.WebConfig:
        path = os.path.join(self.tmp, 'web.yml')
        with open(path, 'w') as f:
            f.write(text)
        return webconfig.load(path)

    def refused(self, text: str) -> str:
        e = self.assertRaises(webconfig.WebConfigError, self.load, text)
        self.assertEqual(1, len(str(e).splitlines()))
        self.assertIn('web.yml: ', str(e))
        return str(e)

    def test_empty_file_is_plain_http_for_all(self):
        config = self.load('')
        self.assertFalse(config.tls)
        self.assertIsNone(config.ssl_context())
        self.assertTrue(config.check_password('anyone', ''))

    def test_tls_with_client_certificates_relative_paths(self):
        config = self.load(
            'tls_server_config:\n  cert_file: server.crt\n'
            '  key_file: server.key\n  client_ca_file: server.crt\n'
            '  client_auth_type: RequireAndVerifyClientCert\n'
            '  min_version: TLS13\n')
        context = config.ssl_context()
        self.assertEqual(ssl.CERT_REQUIRED, context.verify_mode)
        self.assertEqual(ssl.TLSVersion.TLSv1_3, context.minimum_version)

    def test_basic_auth(self):
        config = self.load(f'basic_auth_users:\n  prom: '
                           f'{bcrypt_hash("s3cret")}\n')
        self.assertTrue(config.check_password('prom', 's3cret'))
        self.assertTrue(config.check_password('prom', 's3cret'))  # cached
        self.assertFalse(config.check_password('prom', 'wrong'))
        self.assertFalse(config.check_password('nobody', 's3cret'))

    def test_refusals(self):
        tls = 'tls_server_config:\n  cert_file: server.crt\n' \
              '  key_file: server.key\n'
        for text, words in (
                ('tls_server_config:\n  cert_file: server.crt\n',
                 'missing one of key or key_file'),
                ('tls_server_config:\n  key_file: server.key\n',
                 'missing one of cert or cert_file'),
                ('tls_server_config:\n  client_auth_type: '
                 'RequireAndVerifyClientCert\n',
                 'missing one of cert or cert_file'),
                (tls + '  client_auth_type: RequireAnyClientCert\n',
                 'certificates nobody verifies'),
                (tls + '  client_auth_type: Sometimes\n',
                 'is an invalid ClientAuth'),
                (tls + '  client_ca_file: server.crt\n',
                 "client CA's have been configured without a Client Auth "
                 'Policy'),
                (tls + '  client_ca_file: server.key\n'
                 '  client_auth_type: RequireAndVerifyClientCert\n',
                 'the client CA cannot be used'),
                (tls + '  client_allowed_sans: [a]\n  client_auth_type: '
                 'VerifyClientCertIfGiven\n',
                 'client_allowed_sans requires client_auth_type'),
                ('tls_server_config:\n  cert_file: nope.crt\n'
                 '  key_file: server.key\n', 'nope.crt cannot be read'),
                ('tls_server_config:\n  cert_file: server.key\n'
                 '  key_file: server.key\n', 'cannot be used'),
                (tls + '  cipher_suites: [TLS_INVENTED]\n',
                 'unknown cipher: TLS_INVENTED'),
                (tls + '  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n',
                 'missing an HTTP/2-required'),
                (tls + '  curve_preferences: [CurveP999]\n',
                 'unknown curve: CurveP999'),
                (tls + '  curve_preferences: [CurveP256, CurveP384]\n',
                 'one curve, or all of them'),
                (tls + '  min_version: TLS14\n', 'unknown TLS version'),
                (tls + '  min_version: TLS13\n  max_version: TLS12\n',
                 'min_version is above max_version'),
                (tls + '  ciphers: [x]\n',
                 'tls_server_config.ciphers is not a setting'),
                ('http_server_config:\n  headers:\n    X-Powered-By: me\n',
                 "HTTP header 'X-Powered-By' can not be configured"),
                ('http_server_config:\n  headers:\n'
                 '    X-Frame-Options: allow\n',
                 'invalid value for X-Frame-Options'),
                ('rate_limit:\n  interval: soon\n',
                 'rate_limit.interval must be a duration'),
                ('basic_auth_users:\n  prom: plaintext\n',
                 'is not a whole bcrypt hash'),
                ('basic_auth_users:\n  john: $2y$10$doe\n',
                 'hashedSecret too short'),
                ('basic_auth_users:\n  prom: $2y$31$' + 'a' * 53 + '\n',
                 'cost 31'),
                ('tls_server_config: [\n', 'is not valid YAML (line'),
                ('listen: 1\n', 'listen is not a setting')):
            self.assertIn(words, self.refused(text))

    def test_good_files_of_the_toolkit_kinds_load(self):
        with open(self.cert) as f:
            inline_cert = f.read()
        with open(self.key) as f:
            inline_key = f.read()
        indent = lambda text: ''.join(f'    {line}\n'  # noqa: E731
                                      for line in text.splitlines())
        tls = 'tls_server_config:\n  cert_file: server.crt\n' \
              '  key_file: server.key\n'
        for text in (
                '',
                tls + '  cipher_suites:\n'
                '  - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n'
                '  - TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\n'
                '  max_version: TLS12\n',
                tls + '  curve_preferences: [CurveP521]\n',
                tls + '  curve_preferences: [CurveP256, CurveP384, '
                'CurveP521, X25519]\n',
                tls + '  prefer_server_cipher_suites: false\n',
                tls + '  min_version: TLS10\n',
                tls + '  client_auth_type: VerifyClientCertIfGiven\n',
                tls + '  client_auth_type: RequireAndVerifyClientCert\n'
                '  client_ca_file: server.crt\n'
                '  client_allowed_sans: [one, two]\n',
                f'tls_server_config:\n  cert: |\n{indent(inline_cert)}'
                f'  key: |\n{indent(inline_key)}',
                'http_server_config:\n  http2: false\n  headers:\n'
                '    X-Frame-Options: deny\n    X-XSS-Protection: 1\n',
                'rate_limit:\n  interval: 1s\n  burst: 0\n',
                'rate_limit:\n  interval: 0\n  burst: 0\n'):
            self.load(text)

    def test_rate_limit_durations(self):
        for text, seconds in (('1s', 1.0), ('500ms', 0.5), ('1m30s', 90.0),
                              ('2h', 7200.0)):
            config = self.load(f'rate_limit:\n  interval: {text}\n'
                               '  burst: 3\n')
            self.assertEqual(webconfig.RateLimit(seconds, 3),
                             config.rate_limit)

    def test_unknown_user_costs_the_files_highest_cost(self):
        config = self.load(f'basic_auth_users:\n  a: {bcrypt_hash("x")}\n'
                           '  b: ' + bcrypt.hashpw(b'y', bcrypt.gensalt(6))
                           .decode() + '\n')
        self.assertFalse(config.check_password('nobody', 'x'))
        self.assertEqual(b'06', config.passwords._dummy.split(b'$')[2])

    def test_password_over_72_bytes_as_go_checks_it(self):
        long = 'p' * 80
        config = self.load('basic_auth_users:\n  prom: ' +
                           bcrypt.hashpw(b'p' * 72, bcrypt.gensalt(4))
                           .decode() + '\n')
        self.assertTrue(config.check_password('prom', long))

    def test_outcomes_are_cached_both_ways(self):
        config = self.load(f'basic_auth_users:\n  prom: '
                           f'{bcrypt_hash("s3cret")}\n')
        key = config.passwords.key
        self.assertIsNone(config.passwords.cached(key('prom', b's3cret')))
        self.assertTrue(config.check_password('prom', 's3cret'))
        self.assertFalse(config.check_password('prom', 'bad'))
        self.assertTrue(config.passwords.cached(key('prom', b's3cret')))
        self.assertFalse(config.passwords.cached(key('prom', b'bad')))

    def test_missing_file(self):
        e = self.assertRaises(webconfig.WebConfigError, webconfig.load,
                              os.path.join(self.tmp, 'none.yml'))
        self.assertIn('cannot be read', str(e))
