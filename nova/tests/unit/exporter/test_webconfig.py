"""Prometheus' web configuration file: what is accepted, what is refused in
one line, and how passwords are checked."""

import os
import ssl
import subprocess

import bcrypt
import fixtures

from nova.exporter import webconfig
from nova import test


def make_cert(directory: str, name: str = 'server',
              ca: tuple | None = None) -> tuple[str, str]:
    """A certificate and key for 127.0.0.1, self-signed or signed by
    ``ca`` (cert, key); (cert path, key path)."""
    cert = os.path.join(directory, f'{name}.crt')
    key = os.path.join(directory, f'{name}.key')
    argv = ['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
            '-keyout', key, '-out', cert, '-days', '1', '-subj',
            f'/CN={name}', '-addext', 'subjectAltName=IP:127.0.0.1']
    if ca is not None:
        argv += ['-CA', ca[0], '-CAkey', ca[1]]
    subprocess.run(argv, check=True, capture_output=True, timeout=60)
    return cert, key


def bcrypt_hash(password: str) -> str:
    # $2y$, as htpasswd -B writes it
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode(
    ).replace('$2b$', '$2y$', 1)


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
        for text, words in (
                ('tls_server_config:\n  cert_file: server.crt\n',
                 'needs both cert_file and key_file'),
                ('tls_server_config:\n  cert_file: server.crt\n'
                 '  key_file: server.key\n  client_auth_type: '
                 'RequireAnyClientCert\n',
                 "client_auth_type 'RequireAnyClientCert' is not one of"),
                ('tls_server_config:\n  cert_file: server.crt\n'
                 '  key_file: server.key\n  client_auth_type: '
                 'RequireAndVerifyClientCert\n', 'needs client_ca_file'),
                ('tls_server_config:\n  cert_file: nope.crt\n'
                 '  key_file: server.key\n', 'nope.crt cannot be read'),
                ('tls_server_config:\n  cert_file: server.key\n'
                 '  key_file: server.key\n', 'cannot be used'),
                ('tls_server_config:\n  cert_file: server.crt\n'
                 '  key_file: server.key\n  cipher_suites: [x]\n',
                 'tls_server_config.cipher_suites is not a setting'),
                ('basic_auth_users:\n  prom: plaintext\n',
                 'the password of prom is not a bcrypt hash'),
                ('tls_server_config: [\n', 'is not valid YAML (line'),
                ('listen: 1\n', 'listen is not a setting'),
                ('http_server_config:\n  http2: true\n',
                 'http_server_config is not supported')):
            self.assertIn(words, self.refused(text))

    def test_missing_file(self):
        e = self.assertRaises(webconfig.WebConfigError, webconfig.load,
                              os.path.join(self.tmp, 'none.yml'))
        self.assertIn('cannot be read', str(e))
