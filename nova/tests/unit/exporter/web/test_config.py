"""The web configuration file read as the toolkit's typed schema: what
loads, what is refused in one line (naming a line and the schema's keys,
never the file's content), and the bounds on what reading may cost.
"""

import os

import fixtures

from nova import test
from nova.exporter.web import config as web_config
from nova.exporter.web import yamlread
from nova.tests.fixtures.exporter import bcrypt_hash
from nova.tests.fixtures.exporter import make_cert

TLS = 'tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n'


class ConfigTest(test.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.cert, self.key = make_cert(self.tmp)
        self.path = os.path.join(self.tmp, 'web.yml')

    def load(self, text) -> web_config.WebConfig:
        with open(self.path, 'wb') as f:
            f.write(text.encode() if isinstance(text, str) else text)
        return web_config.load(self.path)

    def refused(self, text) -> str:
        e = self.assertRaises(web_config.WebConfigError, self.load, text)
        self.assertEqual(1, len(str(e).splitlines()))
        self.assertTrue(str(e).startswith(self.path + ': '), str(e))
        return str(e)

    def test_empty_file_is_plain_http_for_all(self):
        for text in ('', '---\n', '{}\n', 'tls_server_config:\n'):
            config = self.load(text)
            self.assertIsNone(config.tls)
            self.assertEqual({}, config.users)

    def test_tls_settings_with_files_read_relative_to_the_file(self):
        config = self.load(TLS + '  client_ca_file: server.crt\n'
                           '  client_auth_type: RequireAndVerifyClientCert\n'
                           '  min_version: TLS13\n')
        with open(self.cert, 'rb') as f:
            cert = f.read()
        self.assertEqual(web_config.TLSSettings(
            cert=cert, key=config.tls.key, client_ca=cert,
            client_auth='RequireAndVerifyClientCert', min_version='TLS13'),
            config.tls)

    def test_refusals_say_the_setting_and_the_fix(self):
        for text, words in (
                ('tls_server_config:\n  cert_file: server.crt\n',
                 'missing one of key or key_file'),
                ('tls_server_config:\n  key_file: server.key\n',
                 'missing one of cert or cert_file'),
                ('tls_server_config:\n  client_auth_type: '
                 'RequireAndVerifyClientCert\n',
                 'missing one of cert or cert_file'),
                (TLS + '  client_auth_type: RequireAnyClientCert\n',
                 'certificates nobody verifies'),
                (TLS + '  client_auth_type: Sometimes\n',
                 'line 4: tls_server_config.client_auth_type is an invalid '
                 'ClientAuth'),
                (TLS + '  client_ca_file: server.crt\n',
                 "client CA's have been configured without a Client Auth "
                 'Policy'),
                (TLS + '  client_allowed_sans: [a]\n  client_auth_type: '
                 'VerifyClientCertIfGiven\n',
                 'client_allowed_sans requires client_auth_type'),
                ('tls_server_config:\n  cert_file: nope.crt\n'
                 '  key_file: server.key\n', 'nope.crt cannot be read'),
                (TLS + '  cipher_suites: [TLS_INVENTED]\n',
                 'cipher_suites item 1 is an unknown cipher'),
                (TLS + '  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n',
                 'missing an HTTP/2-required'),
                (TLS + '  curve_preferences: [CurveP999]\n',
                 'curve_preferences item 1 is an unknown curve'),
                (TLS + '  curve_preferences: [CurveP256, CurveP384]\n',
                 'one curve, or all of them'),
                (TLS + '  min_version: TLS14\n', 'unknown TLS version'),
                (TLS + '  min_version: TLS13\n  max_version: TLS12\n',
                 'min_version is above max_version'),
                (TLS + '  ciphers: [x]\n',
                 'line 4: a key under tls_server_config is not a setting '
                 'of the exporter toolkit\'s web configuration: did you '
                 'mean cipher_suites?'),
                ('http_server_config:\n  headers:\n    X-Powered-By: me\n',
                 'line 3: http_server_config.headers: a header that can '
                 'not be configured'),
                ('http_server_config:\n  headers:\n'
                 '    X-Frame-Options: allow\n',
                 'invalid value for X-Frame-Options'),
                ('rate_limit:\n  interval: soon\n',
                 'rate_limit.interval must be a duration'),
                ('rate_limit:\n  interval: 1s\n  burst: many\n',
                 'rate_limit.burst must be a whole number'),
                ('basic_auth_users:\n  prom: plaintext\n',
                 'line 2: basic_auth_users: a user\'s hash is not a whole '
                 'bcrypt hash'),
                ('basic_auth_users:\n  john: $2y$10$doe\n',
                 'hashedSecret too short'),
                ('basic_auth_users:\n  prom: $2y$32$' + 'a' * 53 + '\n',
                 'cost 32'),
                # the line the operator sees: not the one after the file's
                # end, where PyYAML marks an unclosed bracket
                ('tls_server_config: [\n', 'is not valid YAML (line 1)'),
                ('a: 1\nb: "open\nc: 2\n', 'is not valid YAML (line 2)'),
                ('- a\n- b\n', 'the file must be a mapping'),
                ('listen: 1\n', 'line 1: a key is not a setting')):
            with self.subTest(text=text):
                self.assertIn(words, self.refused(text))

    def test_a_value_of_the_wrong_kind_is_one_line(self):
        # Each crashed or was str()-ed before: the toolkit's types decide.
        for text, words in (
                (TLS + '  min_version: [TLS12]\n',
                 'line 4: tls_server_config.min_version must be a string, '
                 'not a list'),
                ('tls_server_config:\n  cert_file: {a: b}\n',
                 'must be a string, not a mapping'),
                (TLS + '  cipher_suites: TLS_AES_128_GCM_SHA256\n',
                 'cipher_suites must be a list of strings, not a single'),
                (TLS + '  cipher_suites: [[a]]\n',
                 'cipher_suites item 1 must be a string, not a list'),
                (TLS + '  prefer_server_cipher_suites: maybe\n',
                 'prefer_server_cipher_suites must be true or false'),
                ('http_server_config:\n  http2: 1\n',
                 'http2 must be true or false'),
                ('http_server_config:\n  headers: [a]\n',
                 'headers must be a mapping'),
                ('http_server_config:\n  headers:\n    X-XSS-Protection: '
                 '[1, 2]\n', 'headers must be a string, not a list'),
                ('rate_limit: 5\n', 'rate_limit must be a mapping'),
                ('rate_limit:\n  interval: 1s\n  burst: true\n',
                 'burst must be a whole number'),
                ('basic_auth_users: [a, b]\n',
                 'basic_auth_users must be a mapping'),
                ('basic_auth_users:\n  prom: {a: 1}\n',
                 'basic_auth_users must be a string, not a mapping'),
                ('tls_server_config:\n  cert_file: a\n  cert_file: b\n',
                 'line 3: tls_server_config.cert_file is set twice'),
                ('? [a, b]\n: c\n', 'line 1: a key is not a plain '
                                    'string')):
            with self.subTest(text=text):
                self.assertIn(words, self.refused(text))

    def test_a_scalar_is_a_string_setting_as_yaml_v2_reads_it(self):
        config = self.load('http_server_config:\n  headers:\n'
                           '    X-XSS-Protection: 1\n'
                           '    Strict-Transport-Security: 1.5\n')
        self.assertEqual((('X-XSS-Protection', '1'),
                          ('Strict-Transport-Security', '1.5')),
                         config.headers)

    def test_an_alias_bomb_is_refused(self):
        bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
        for name, prev in zip('bcdefgh', 'abcdefg'):
            bomb += f'{name}: &{name} [{",".join(["*" + prev] * 9)}]\n'
        self.assertLess(len(bomb), 700)
        out = self.refused(
            bomb + 'http_server_config:\n  headers:\n'
                   '    X-XSS-Protection: *h\n')
        self.assertIn('more than 10000 YAML nodes', out)
        self.assertIn('contains itself', self.refused('a: &a [*a]\n'))

    def test_files_too_large_or_not_regular_are_refused(self):
        big = os.path.join(self.tmp, 'big.yml')
        with open(big, 'w') as f:
            f.write('# ' + 'x' * yamlread.MAX_BYTES + '\n')
        e = self.assertRaises(web_config.WebConfigError, web_config.load,
                              big)
        self.assertIn('larger than 1024 KiB', str(e))
        fifo = os.path.join(self.tmp, 'fifo.yml')
        os.mkfifo(fifo)
        e = self.assertRaises(web_config.WebConfigError, web_config.load,
                              fifo)  # never blocks
        self.assertIn('not a regular file', str(e))
        e = self.assertRaises(web_config.WebConfigError, self.load,
                              'tls_server_config:\n  cert_file: /dev/zero\n'
                              '  key_file: server.key\n')
        self.assertIn('not a regular file', str(e))

    def test_nothing_of_the_content_reaches_the_error(self):
        secret = 'root:$y$j9T$SECRETSECRET$abcdef:19000:0:99999:7:::'
        for text in (secret + '\n', f'{secret}: 1\n',
                     f'basic_auth_users:\n  {secret}: x\n',
                     f'http_server_config:\n  headers:\n    {secret}: x\n',
                     f'tls_server_config:\n  min_version: {secret}\n',
                     f'tls_server_config:\n  cipher_suites: [{secret}]\n',
                     f'rate_limit:\n  interval: "{secret}"\n'):
            with self.subTest(text=text):
                out = self.refused(text)
                self.assertNotIn('SECRET', out)
                self.assertNotIn('root', out)

    def test_good_files_of_the_toolkit_kinds_load(self):
        with open(self.cert) as f:
            inline_cert = f.read()
        with open(self.key) as f:
            inline_key = f.read()

        def indent(text):
            return ''.join(f'    {line}\n' for line in text.splitlines())
        for text in (
                TLS + '  cipher_suites:\n'
                '  - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n'
                '  - TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\n'
                '  max_version: TLS12\n',
                TLS + '  curve_preferences: [CurveP521]\n',
                TLS + '  curve_preferences: [CurveP256, CurveP384, '
                'CurveP521, X25519]\n',
                TLS + '  prefer_server_cipher_suites: false\n',
                TLS + '  min_version: TLS10\n',
                TLS + '  client_auth_type: VerifyClientCertIfGiven\n',
                TLS + '  client_auth_type: RequireAndVerifyClientCert\n'
                '  client_ca_file: server.crt\n'
                '  client_allowed_sans: [one, two]\n',
                f'tls_server_config:\n  cert: |\n{indent(inline_cert)}'
                f'  key: |\n{indent(inline_key)}',
                'http_server_config:\n  http2: false\n  headers:\n'
                '    X-Frame-Options: deny\n    X-XSS-Protection: 1\n',
                'rate_limit:\n  interval: 1s\n  burst: 0\n',
                'rate_limit:\n  interval: 0\n  burst: 0\n',
                # a high cost is accepted, as the toolkit accepts it
                f'basic_auth_users:\n  slow: $2y$18${"a" * 53}\n'):
            with self.subTest(text=text):
                self.load(text)

    def test_rate_limit_durations(self):
        for text, seconds in (('1s', 1.0), ('500ms', 0.5), ('1m30s', 90.0),
                              ('2h', 7200.0), ('1000000000', 1.0)):
            config = self.load(f'rate_limit:\n  interval: {text}\n'
                               '  burst: 3\n')
            self.assertEqual(web_config.RateLimit(seconds, 3),
                             config.rate_limit)
        self.assertIsNone(self.load('rate_limit:\n  interval: 0\n'
                                    '  burst: 3\n').rate_limit)

    def test_users_and_their_costs(self):
        config = self.load(f'basic_auth_users:\n  a: {bcrypt_hash("x")}\n'
                           f'  b: $2y$14${"b" * 53}\n')
        self.assertEqual({'a': 4, 'b': 14}, config.costs)
        self.assertEqual(['a', 'b'], sorted(config.users))

    def test_changed_by_a_stat_of_each_file(self):
        config = self.load(TLS)
        self.assertFalse(web_config.changed(config))
        with open(self.cert, 'a') as f:
            f.write('\n')  # a renewed certificate
        self.assertTrue(web_config.changed(config))
        again = web_config.load(self.path)
        self.assertNotEqual(config.fingerprint, again.fingerprint)
        self.assertFalse(web_config.changed(again))

    def test_missing_file(self):
        e = self.assertRaises(web_config.WebConfigError, web_config.load,
                              os.path.join(self.tmp, 'none.yml'))
        self.assertIn('cannot be read: No such file', str(e))
