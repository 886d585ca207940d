"""A server context from tls_server_config, and the SAN check."""

import os
import ssl

import fixtures

from nova import test
from nova.exporter.web import config as web_config
from nova.exporter.web import tls as web_tls
from nova.tests.fixtures.exporter import make_cert


class ServerTLSTest(test.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        cert, key = make_cert(self.tmp)
        with open(cert, 'rb') as f:
            self.cert = f.read()
        with open(key, 'rb') as f:
            self.key = f.read()

    def build(self, **kw) -> web_tls.ServerTLS:
        settings = {'cert': self.cert, 'key': self.key, **kw}
        return web_tls.ServerTLS.build(web_config.TLSSettings(**settings),
                                       'web.yml')

    def test_context_as_the_settings_say(self):
        server = self.build(client_ca=self.cert, min_version='TLS13',
                            client_auth='RequireAndVerifyClientCert')
        self.assertEqual(ssl.CERT_REQUIRED, server.context.verify_mode)
        self.assertEqual(ssl.TLSVersion.TLSv1_3,
                         server.context.minimum_version)
        self.assertTrue(server.context.options & ssl.OP_NO_RENEGOTIATION)
        self.assertIsNone(server.allowed_sans)
        server = self.build(client_auth='VerifyClientCertIfGiven')
        self.assertEqual(ssl.CERT_OPTIONAL, server.context.verify_mode)

    def test_what_openssl_cannot_use_is_one_line(self):
        for kw, words in (({'key': b'not a key'}, 'cannot be used'),
                          ({'client_ca': b'not pem',
                            'client_auth': 'RequireAndVerifyClientCert'},
                           'the client CA cannot be used')):
            e = self.assertRaises(web_config.WebConfigError, self.build,
                                  **kw)
            self.assertIn(f'web.yml: {web_config.TLS}: ', str(e))
            self.assertIn(words, str(e))
            self.assertEqual(1, len(str(e).splitlines()))

    def test_sans_compared_as_the_toolkit_does_ips_as_addresses(self):
        server = self.build(client_auth='RequireAndVerifyClientCert',
                            client_ca=self.cert,
                            allowed_sans=('test3', '2001:db8::1',
                                          '10.0.0.1', 'spiffe://a/b'))
        for sans, allowed in (
                ((('DNS', 'test3'),), True),
                ((('DNS', 'test4'),), False),
                # Python prints an IPv6 SAN uncompressed, Go compressed
                ((('IP Address', '2001:DB8:0:0:0:0:0:1\n'.strip()),), True),
                ((('IP Address', '2001:DB8:0:0:0:0:0:2'),), False),
                ((('IP Address', '10.0.0.1'),), True),
                ((('URI', 'spiffe://a/b'),), True),
                ((('DNS', 'x'), ('email', 'test3')), True),
                ((), False)):
            self.assertEqual(allowed, server.peer_allowed(
                {'subjectAltName': sans}), sans)
        self.assertFalse(server.peer_allowed(None))
        self.assertTrue(self.build().peer_allowed(None))

    def test_deprecated_cert_files(self):
        config, server = web_tls.from_cert_files(
            os.path.join(self.tmp, 'server.crt'),
            os.path.join(self.tmp, 'server.key'))
        self.assertEqual(ssl.CERT_NONE, server.context.verify_mode)
        self.assertEqual(2, len(config.files))
        self.assertTrue(config.tls)
