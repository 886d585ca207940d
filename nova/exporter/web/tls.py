"""TLS as the exporter toolkit configures it: a server context from
tls_server_config, and the client_allowed_sans check.

``ServerTLS.build`` turns nova.exporter.web.config's ``TLSSettings`` into an
``ssl.SSLContext`` (certificate and key handed to OpenSSL through an
anonymous in-memory file, never a file another user could read), refusing
in one line what OpenSSL cannot use. ``peer_allowed`` compares a verified
client certificate's SANs with the allowed ones as the toolkit does, IP
addresses as addresses (``2001:db8::1`` is ``2001:DB8:0:0:0:0:0:1``, as
Python prints it). Nothing here reads files or serves connections.
"""

import dataclasses
import hashlib
import ipaddress
import os
import ssl

from nova.exporter.web import config as web_config
from nova.exporter.web import yamlread

VERSIONS = {'TLS10': ssl.TLSVersion.TLSv1, 'TLS11': ssl.TLSVersion.TLSv1_1,
            'TLS12': ssl.TLSVersion.TLSv1_2,
            'TLS13': ssl.TLSVersion.TLSv1_3}
VERIFY = {'NoClientCert': ssl.CERT_NONE,
          'VerifyClientCertIfGiven': ssl.CERT_OPTIONAL,
          'RequireAndVerifyClientCert': ssl.CERT_REQUIRED}


def _memfd(name: str, data: bytes) -> int:
    """An anonymous in-memory file holding ``data``."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    os.write(fd, data)
    return fd


def _load_pair(context: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    fds = [_memfd('tls-cert', cert), _memfd('tls-key', key)]
    try:
        context.load_cert_chain(f'/proc/self/fd/{fds[0]}',
                                f'/proc/self/fd/{fds[1]}')
    finally:
        for fd in fds:
            os.close(fd)


def _san(value: str):
    """A SAN for comparing: an IP address as an address, else the text."""
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return value


@dataclasses.dataclass(frozen=True)
class ServerTLS:
    """A server's TLS context and the SANs a client certificate must have
    one of (None: any).
    """

    context: ssl.SSLContext
    allowed_sans: frozenset | None = None

    @classmethod
    def build(cls, settings: web_config.TLSSettings, path: str
              ) -> 'ServerTLS':
        """The context ``settings`` describe; WebConfigError naming
        ``path`` (the web configuration file) when OpenSSL cannot use them.
        """
        def fail(reason):
            raise web_config.WebConfigError(
                path=path, reason=f'{web_config.TLS}: {reason}')

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # A client's renegotiation is refused (and logged, rarely).
        context.options |= ssl.OP_NO_RENEGOTIATION
        low = VERSIONS[settings.min_version]
        try:
            context.minimum_version = low
            context.maximum_version = VERSIONS[settings.max_version]
            if low < ssl.TLSVersion.TLSv1_2:
                # OpenSSL 3 allows TLS 1.0/1.1 only at security level 0.
                context.set_ciphers('DEFAULT:@SECLEVEL=0')
            if settings.ciphers:
                context.set_ciphers(':'.join(settings.ciphers))
            elif settings.ciphers is not None:  # TLS 1.3 suites only
                context.minimum_version = ssl.TLSVersion.TLSv1_3
            if not settings.prefer_server_ciphers:
                context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
            if settings.curve is not None:
                context.set_ecdh_curve(settings.curve)
            _load_pair(context, settings.cert, settings.key)
        except (ssl.SSLError, OSError, ValueError) as e:
            fail(f'the certificate, key or TLS settings cannot be used: '
                 f'{getattr(e, "reason", None) or e}.')
        verify = VERIFY[settings.client_auth]
        try:
            if settings.client_ca:
                context.load_verify_locations(
                    cadata=settings.client_ca.decode('latin-1'))
            elif verify != ssl.CERT_NONE:
                # As the toolkit: with no client CA, the system's roots.
                context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
        except (ssl.SSLError, OSError, ValueError) as e:
            fail(f'the client CA cannot be used (it must hold PEM '
                 f'certificates): {getattr(e, "reason", None) or e}.')
        context.verify_mode = verify
        sans = settings.allowed_sans
        return cls(context, None if sans is None else frozenset(
            _san(s) for s in sans))

    def peer_allowed(self, cert: dict | None) -> bool:
        """Whether a verified client certificate (``getpeercert()``) has
        a SAN that client_allowed_sans lists; True without the list.
        """
        if self.allowed_sans is None:
            return True
        if not cert:
            return False
        return any(_san(value) in self.allowed_sans
                   for _, value in cert.get('subjectAltName', ()))


def from_cert_files(cert_file: str, key_file: str) -> tuple:
    """(WebConfig, ServerTLS) of the deprecated [exporter] tls_cert_file
    and tls_key_file: TLS 1.2 and up, no client certificates. OSError or
    WebConfigError when they cannot be read or used.
    """
    cert = yamlread.read_bounded(cert_file)
    key = yamlread.read_bounded(key_file)
    settings = web_config.TLSSettings(cert=cert, key=key)
    files = tuple(yamlread.identity(p) for p in (cert_file, key_file))
    config = web_config.WebConfig(
        tls=settings, files=files,
        fingerprint=hashlib.sha256(cert + b'\0' + key).hexdigest())
    return config, ServerTLS.build(settings, cert_file)
