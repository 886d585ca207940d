"""The exporter toolkit's web configuration file, read as its typed schema.

The Prometheus exporter toolkit's ``web-config.yml`` (its ``Config``,
``TLSConfig``, ``HTTPConfig`` and ``RateLimiterConfig``), read the way the
toolkit reads it (``yaml.UnmarshalStrict``): each setting has a type, a
string setting takes any scalar as its text, an unknown or repeated key is
refused, and so is a value of the wrong kind (a list where a string
belongs). What the toolkit refuses is refused here, in one line naming the
setting, its line and the fix.

Reading is bounded: the file and each file it names must be regular files
of at most ``MAX_BYTES``, and YAML aliases may not expand to more than
``MAX_NODES`` nodes, so no file can take the exporter's memory or hold up a
signal. Nothing of a file's content is put into an error but the names of
the schema's own keys: a file pointed at by mistake (``/etc/shadow``) puts
none of its lines into the log.

This module gives plain values (``WebConfig``, ``TLSSettings``); building
a TLS context is nova.exporter.web.tls's job, checking passwords
nova.exporter.web.handler's. Nothing here serves HTTP.
"""

import dataclasses
import hashlib
import re

from nova import exception
from nova.exporter.web import yamlread

TLS = 'tls_server_config'
HTTP = 'http_server_config'

# client_auth_type values the toolkit knows (RequireClientCert is its old
# name of RequireAnyClientCert).
CLIENT_AUTH_TYPES = ('NoClientCert', 'RequestClientCert',
                     'RequireAnyClientCert', 'RequireClientCert',
                     'VerifyClientCertIfGiven', 'RequireAndVerifyClientCert')
# Those that accept client certificates nobody verifies: Python's ssl
# cannot ask for a certificate without verifying it.
UNVERIFIED_CLIENT_AUTH = ('RequestClientCert', 'RequireAnyClientCert',
                          'RequireClientCert')
VERSIONS = ('TLS10', 'TLS11', 'TLS12', 'TLS13')
# Go's names of the cipher suites crypto/tls calls secure -> OpenSSL's.
# TLS 1.3's three suites are fixed in both Go and Python: accepted, no
# effect (as in Go).
TLS12_CIPHERS = {
    'TLS_RSA_WITH_AES_128_CBC_SHA': 'AES128-SHA',
    'TLS_RSA_WITH_AES_256_CBC_SHA': 'AES256-SHA',
    'TLS_RSA_WITH_AES_128_GCM_SHA256': 'AES128-GCM-SHA256',
    'TLS_RSA_WITH_AES_256_GCM_SHA384': 'AES256-GCM-SHA384',
    'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA': 'ECDHE-ECDSA-AES128-SHA',
    'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA': 'ECDHE-ECDSA-AES256-SHA',
    'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA': 'ECDHE-RSA-AES128-SHA',
    'TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA': 'ECDHE-RSA-AES256-SHA',
    'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256':
        'ECDHE-ECDSA-AES128-GCM-SHA256',
    'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256': 'ECDHE-RSA-AES128-GCM-SHA256',
    'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384':
        'ECDHE-ECDSA-AES256-GCM-SHA384',
    'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384': 'ECDHE-RSA-AES256-GCM-SHA384',
    'TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256':
        'ECDHE-RSA-CHACHA20-POLY1305',
    'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256':
        'ECDHE-ECDSA-CHACHA20-POLY1305',
}
TLS13_CIPHERS = ('TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384',
                 'TLS_CHACHA20_POLY1305_SHA256')
# Go's HTTP/2 server needs one of these when TLS 1.2 suites are listed,
# and the toolkit refuses a list without one unless http2 is false.
HTTP2_CIPHERS = ('TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256',
                 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256')
CURVES = {'CurveP256': 'prime256v1', 'CurveP384': 'secp384r1',
          'CurveP521': 'secp521r1', 'X25519': 'X25519'}
# The toolkit's headers an operator may set, and their allowed values
# (None: any value).
HEADERS = {'Strict-Transport-Security': None,
           'X-Content-Type-Options': ('nosniff',),
           'X-Frame-Options': ('deny', 'sameorigin'),
           'X-XSS-Protection': None,
           'Content-Security-Policy': None}
# How to make a user's hash: htpasswd (Debian's apache2-utils), cost 10.
HTPASSWD = ('"htpasswd -nBC 10 USER" (Debian package apache2-utils: '
            'apt-get install apache2-utils)')
# A bcrypt hash as htpasswd -B and Go's bcrypt write it: $2a$, $2b$ or
# $2y$, two digits of cost, 22 characters of salt and 31 of hash.
HASH = re.compile(rb'\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}')


class WebConfigError(exception.NovaException):
    msg_fmt = '%(path)s: %(reason)s'


# -- the schema: each key's kind --------------------------------------------

SCHEMA = {
    TLS: {
        'cert': yamlread.STR, 'key': yamlread.STR,
        'client_ca': yamlread.STR, 'cert_file': yamlread.STR,
        'key_file': yamlread.STR, 'client_auth_type': yamlread.STR,
        'client_ca_file': yamlread.STR,
        'cipher_suites': yamlread.STR_LIST,
        'curve_preferences': yamlread.STR_LIST,
        'min_version': yamlread.STR, 'max_version': yamlread.STR,
        'prefer_server_cipher_suites': yamlread.BOOL,
        'client_allowed_sans': yamlread.STR_LIST,
    },
    HTTP: {'http2': yamlread.BOOL, 'headers': yamlread.STR_MAP},
    'rate_limit': {'interval': yamlread.DURATION, 'burst': yamlread.INT},
    'basic_auth_users': yamlread.STR_MAP,
}


@dataclasses.dataclass(frozen=True)
class RateLimit:
    """At most ``burst`` requests at once, one more each ``interval``
    seconds (Go's rate.Limiter as the toolkit uses it: burst 0 refuses
    every request).
    """

    interval: float
    burst: int


@dataclasses.dataclass(frozen=True)
class TLSSettings:
    """tls_server_config, with the files it names read: plain values for
    nova.exporter.web.tls to build a context of.
    """

    cert: bytes
    key: bytes
    #: PEM certificates of the client CA, or None (the system's roots)
    client_ca: bytes | None = None
    client_auth: str = 'NoClientCert'
    min_version: str = 'TLS12'
    max_version: str = 'TLS13'
    #: OpenSSL's names of the TLS 1.2 suites, () for TLS 1.3 only, None
    #: for OpenSSL's defaults
    ciphers: tuple[str, ...] | None = None
    #: OpenSSL's name of the one curve, or None for all
    curve: str | None = None
    prefer_server_ciphers: bool = True
    allowed_sans: tuple[str, ...] | None = None


@dataclasses.dataclass(frozen=True)
class WebConfig:
    """What a web configuration file says; empty: plain HTTP, no auth."""

    tls: TLSSettings | None = None
    #: user -> bcrypt hash
    users: dict = dataclasses.field(default_factory=dict)
    #: (header, value) pairs added to every response
    headers: tuple = ()
    http2: bool = True
    rate_limit: RateLimit | None = None
    #: a digest of the file and of every file it names
    fingerprint: str = ''
    #: what a reload compares before reading: each file's identity
    files: tuple = ()
    #: settings applied as the toolkit does, but worth a line in the log
    warnings: tuple[str, ...] = ()

    @property
    def costs(self) -> dict[str, int]:
        """Each user's bcrypt cost."""
        return {user: int(HASH.fullmatch(h).group(1))
                for user, h in self.users.items()}

    def summary(self) -> str:
        """Who may read, in words, for the log."""
        parts = ['https' if self.tls else 'http']
        if self.tls and self.tls.client_auth != 'NoClientCert':
            parts.append(f'client certificates ({self.tls.client_auth})')
        if self.tls and self.tls.allowed_sans is not None:
            parts.append(f'{len(self.tls.allowed_sans)} allowed SANs')
        if self.users:
            parts.append(f'basic auth for {len(self.users)} users')
        if self.rate_limit is not None:
            parts.append(f'rate limit {self.rate_limit.burst} per '
                         f'{self.rate_limit.interval:g}s')
        return ', '.join(parts)


# -- reading files, bounded -------------------------------------------------




def _section(reader: yamlread.Reader, top: dict, name: str) -> dict:
    """{key: value} of a section of SCHEMA, each value typed."""
    kinds = SCHEMA[name]
    nodes = reader.mapping(top.get(name), name, kinds)
    return {key: (reader.value(node, kinds[key], f'{name}.{key}'), node)
            for key, node in nodes.items()}


def _get(section: dict, key: str, default=None):
    value = section.get(key, (None, None))[0]
    return default if value is None else value


def _node(section: dict, key: str):
    return section.get(key, (None, None))[1]


def _ciphers(reader: yamlread.Reader, tls: dict, http2: bool, low: str
             ) -> tuple | None:
    names = _get(tls, 'cipher_suites')
    if not names:
        return None
    for i, name in enumerate(names):
        if name not in TLS12_CIPHERS and name not in TLS13_CIPHERS:
            reader.fail(f'{TLS}.cipher_suites item {i + 1} is an unknown '
                        'cipher: use the names of Go\'s crypto/tls, e.g. '
                        'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256.',
                        _node(tls, 'cipher_suites'))
    if http2 and low != 'TLS13' and not any(n in HTTP2_CIPHERS
                                            for n in names):
        reader.fail(f'{TLS}.cipher_suites is missing an HTTP/2-required '
                    'AES_128_GCM_SHA256 cipher: add '
                    'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, or set '
                    f'{HTTP}.http2 to false.', _node(tls, 'cipher_suites'))
    return tuple(TLS12_CIPHERS[n] for n in names if n in TLS12_CIPHERS)


def _curve(reader: yamlread.Reader, tls: dict) -> str | None:
    names = _get(tls, 'curve_preferences')
    if not names:
        return None
    node = _node(tls, 'curve_preferences')
    for i, name in enumerate(names):
        if name not in CURVES:
            reader.fail(f'{TLS}.curve_preferences item {i + 1} is an '
                        f'unknown curve: use {", ".join(CURVES)}.', node)
    if len(set(names)) == 1:
        return CURVES[names[0]]
    if set(names) != set(CURVES):
        reader.fail(f'{TLS}.curve_preferences: Python\'s ssl applies one '
                    'curve, or all of them (OpenSSL\'s defaults): list one '
                    'curve, or all four.', node)
    return None


def _versions(reader: yamlread.Reader, tls: dict, warnings: list) -> tuple:
    found = []
    for key, default in (('min_version', 'TLS12'), ('max_version', 'TLS13')):
        name = _get(tls, key, default)
        if name not in VERSIONS:
            reader.fail(f'{TLS}.{key} is an unknown TLS version: use one '
                        f'of {", ".join(VERSIONS)}.', _node(tls, key))
        found.append(name)
    low, high = found
    if VERSIONS.index(low) > VERSIONS.index(high):
        reader.fail(f'{TLS}.min_version is above max_version, so no client '
                    'could connect: lower min_version or raise max_version.',
                    _node(tls, 'min_version'))
    if low in ('TLS10', 'TLS11'):
        warnings.append(f'{TLS}.min_version allows TLS 1.0/1.1, which are '
                        'broken: use TLS12 or TLS13.')
    return low, high


def _client_auth(reader: yamlread.Reader, tls: dict, has_ca: bool) -> str:
    auth = _get(tls, 'client_auth_type', '') or 'NoClientCert'
    node = _node(tls, 'client_auth_type')
    if auth not in CLIENT_AUTH_TYPES:
        reader.fail(f'{TLS}.client_auth_type is an invalid ClientAuth: use '
                    'NoClientCert, VerifyClientCertIfGiven or '
                    'RequireAndVerifyClientCert.', node)
    if auth in UNVERIFIED_CLIENT_AUTH:
        reader.fail(f'{TLS}.client_auth_type {auth} accepts client '
                    'certificates nobody verifies, which Python\'s ssl '
                    'cannot do (and which would let anyone in): use '
                    'RequireAndVerifyClientCert with client_ca_file.', node)
    if has_ca and auth == 'NoClientCert':
        reader.fail(f'{TLS}: client CA\'s have been configured without a '
                    'Client Auth Policy: set client_auth_type to '
                    'RequireAndVerifyClientCert (or VerifyClientCertIfGiven),'
                    ' or remove the client CA.', node)
    if _get(tls, 'client_allowed_sans') is not None and \
            auth != 'RequireAndVerifyClientCert':
        reader.fail(f'{TLS}.client_allowed_sans requires client_auth_type '
                    'RequireAndVerifyClientCert.',
                    _node(tls, 'client_allowed_sans'))
    return auth


def _tls(reader: yamlread.Reader, top: dict, http2: bool, warnings: list
         ) -> TLSSettings | None:
    tls = _section(reader, top, TLS)
    texts = {key: _get(tls, key, '') for key in (
        'cert_file', 'key_file', 'cert', 'key', 'client_ca_file',
        'client_ca', 'client_auth_type')}
    if not any(texts.values()):
        return None  # the toolkit's "TLS config is not present"
    if not texts['cert_file'] and not texts['cert']:
        reader.fail(f'{TLS} is missing one of cert or cert_file: give the '
                    'server\'s certificate.', top.get(TLS))
    if not texts['key_file'] and not texts['key']:
        reader.fail(f'{TLS} is missing one of key or key_file: give the '
                    'server\'s private key.', top.get(TLS))
    auth = _client_auth(reader, tls, bool(texts['client_ca_file'] or
                                          texts['client_ca']))
    low, high = _versions(reader, tls, warnings)

    def pem(file_key, text_key):
        if texts[file_key]:
            return reader.file(texts[file_key], f'{TLS}.{file_key}',
                               _node(tls, file_key))
        data = texts[text_key].encode()
        reader.digest.update(hashlib.sha256(data).digest())
        return data or None
    sans = _get(tls, 'client_allowed_sans')
    return TLSSettings(
        cert=pem('cert_file', 'cert'), key=pem('key_file', 'key'),
        client_ca=pem('client_ca_file', 'client_ca'), client_auth=auth,
        min_version=low, max_version=high,
        ciphers=_ciphers(reader, tls, http2, low),
        curve=_curve(reader, tls),
        prefer_server_ciphers=_get(tls, 'prefer_server_cipher_suites',
                                   True),
        allowed_sans=None if sans is None else tuple(sans))


def _headers(reader: yamlread.Reader, http: dict) -> tuple:
    headers = _get(http, 'headers', {})
    node = _node(http, 'headers')
    lines = {key.value: key for key, _ in node.value} if headers else {}
    for name, value in headers.items():
        if name not in HEADERS:
            reader.fail(f'{HTTP}.headers: a header that can not be '
                        f'configured (allowed: {", ".join(HEADERS)}).',
                        lines.get(name))
        if HEADERS[name] is not None and value not in HEADERS[name]:
            reader.fail(f'{HTTP}.headers: invalid value for {name}: '
                        f'expected one of {", ".join(HEADERS[name])}.',
                        lines.get(name))
        if any(c in value for c in '\r\n\0'):
            reader.fail(f'{HTTP}.headers.{name} holds a line break: write '
                        'it on one line.', lines.get(name))
    return tuple(headers.items())


def _users(reader: yamlread.Reader, top: dict) -> dict[str, bytes]:
    node = top.get('basic_auth_users')
    users = reader.value(node, yamlread.STR_MAP, 'basic_auth_users') or {}
    lines = {key.value: key for key, _ in node.value} if users else {}
    found = {}
    for user, hashed in users.items():
        raw = hashed.encode()
        m = HASH.fullmatch(raw)
        where = lines.get(user)
        if m is None:
            reader.fail('basic_auth_users: a user\'s hash is not a whole '
                        'bcrypt hash (hashedSecret too short to be a '
                        'bcrypted password, or malformed): make one with '
                        f'{HTPASSWD}.', where)
        cost = int(m.group(1))
        if not 4 <= cost <= 31:
            reader.fail(f'basic_auth_users: a user\'s hash has bcrypt cost '
                        f'{cost}, outside 4 to 31: make a new one with '
                        f'{HTPASSWD}.', where)
        found[user] = raw
    return found


def load(path: str) -> WebConfig:
    """The WebConfig of the file at ``path``; WebConfigError (one line)
    for anything the toolkit refuses or the exporter cannot apply.
    """
    reader = yamlread.Reader(path, WebConfigError)
    try:
        raw = yamlread.read_bounded(path)
    except OSError as e:
        reader.fail(f'cannot be read: {e.strerror}: check [exporter] '
                    'web_config_file.')
    reader.digest.update(raw)
    top = reader.mapping(reader.document(raw), '', SCHEMA)
    warnings: list[str] = []
    http = _section(reader, top, HTTP)
    http2 = _get(http, 'http2', True)
    headers = _headers(reader, http)
    limit = _section(reader, top, 'rate_limit')
    rate_limit = None
    interval, burst = _get(limit, 'interval', 0.0), _get(limit, 'burst', 0)
    if interval < 0 or burst < 0:
        reader.fail('rate_limit.interval and burst cannot be negative.',
                    top.get('rate_limit'))
    if interval:
        rate_limit = RateLimit(interval, burst)
    users = _users(reader, top)
    tls = _tls(reader, top, http2, warnings)
    return WebConfig(tls=tls, users=users, headers=headers, http2=http2,
                     rate_limit=rate_limit,
                     fingerprint=reader.digest.hexdigest(),
                     files=tuple(reader.files), warnings=tuple(warnings))


def changed(config: WebConfig) -> bool:
    """Whether a file ``config`` was read from (or one it names) may have
    changed since: a few stat() calls, no read.
    """
    return any(yamlread.identity(f[0]) != f for f in config.files)
