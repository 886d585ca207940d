"""Who may read the exporter: Prometheus' web configuration file.

The format of the Prometheus exporter toolkit's ``web-config.yml``, read as
the toolkit reads it (its ``web/`` tests are the specification), so an
operator reuses the file their other exporters read::

    tls_server_config:          # cert/cert_file, key/key_file,
      cert_file: server.crt     # client_ca/client_ca_file, client_auth_type,
      key_file: server.key      # cipher_suites, curve_preferences,
                                # min_version, max_version,
                                # prefer_server_cipher_suites,
                                # client_allowed_sans
    http_server_config:         # http2, headers
      headers: {X-Frame-Options: deny}
    rate_limit: {interval: 1s, burst: 10}
    basic_auth_users:
      prometheus: $2y$10$...    # bcrypt hashes

``load`` reads and checks it: what the toolkit refuses, and what Python's
``ssl`` cannot apply safely, is refused in one line naming the setting and
the fix. A ``WebConfig`` then gives the TLS context (built once, at load),
the response headers, the rate limit, the allowed client SANs, and the
password checks (bcrypt, through ``Passwords``). Nothing here serves HTTP.
"""

import collections
import dataclasses
import hashlib
import os
import re
import ssl
import threading

import bcrypt
import yaml

from nova import exception

# client_auth_type -> ssl verify mode. RequestClientCert and
# RequireAnyClientCert (RequireClientCert) ask for certificates nobody
# verifies, which Python's ssl cannot do: refused, with the reason.
CLIENT_AUTH = {
    '': ssl.CERT_NONE,
    'NoClientCert': ssl.CERT_NONE,
    'VerifyClientCertIfGiven': ssl.CERT_OPTIONAL,
    'RequireAndVerifyClientCert': ssl.CERT_REQUIRED,
}
UNVERIFIED_CLIENT_AUTH = ('RequestClientCert', 'RequireAnyClientCert',
                          'RequireClientCert')
VERSIONS = {'TLS10': ssl.TLSVersion.TLSv1, 'TLS11': ssl.TLSVersion.TLSv1_1,
            'TLS12': ssl.TLSVersion.TLSv1_2,
            'TLS13': ssl.TLSVersion.TLSv1_3}
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
# Go's HTTP/2 server needs one of these when TLS 1.2 suites are listed.
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
KEYS = {
    '': {'tls_server_config', 'http_server_config', 'rate_limit',
         'basic_auth_users'},
    'tls_server_config': {
        'cert', 'key', 'client_ca', 'cert_file', 'key_file',
        'client_auth_type', 'client_ca_file', 'cipher_suites',
        'curve_preferences', 'min_version', 'max_version',
        'prefer_server_cipher_suites', 'client_allowed_sans'},
    'http_server_config': {'http2', 'headers'},
    'rate_limit': {'interval', 'burst'},
}
# bcrypt's cost: each step doubles a check's CPU time (cost 10: about 60 ms
# here). Above 12 (about 240 ms) a few clients naming a user pin the CPUs
# and the exporter cannot answer anyone.
MAX_COST = 12
# A hash as htpasswd -B and Go's bcrypt write it: $2a$, $2b$ or $2y$, two
# digits of cost, 22 characters of salt and 31 of hash.
HASH = re.compile(rb'\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}')
# bcrypt reads 72 bytes of a password; Go's CompareHashAndPassword ignores
# the rest, and so do we (the bcrypt library refuses longer ones).
BCRYPT_MAX_PASSWORD = 72
_DURATION = re.compile(r'(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)')
_UNITS = {'ns': 1e-9, 'us': 1e-6, 'µs': 1e-6, 'ms': 1e-3, 's': 1.0,
          'm': 60.0, 'h': 3600.0}


class WebConfigError(exception.NovaException):
    msg_fmt = '%(path)s: %(reason)s'


@dataclasses.dataclass(frozen=True)
class RateLimit:
    """At most ``burst`` requests at once, one more each ``interval``
    seconds (Go's rate.Limiter, as the toolkit uses it: burst 0 refuses
    every request).
    """

    interval: float
    burst: int


class Passwords:
    """bcrypt checks of basic-auth credentials, with a cache.

    An unknown user is checked against a dummy hash of the highest cost in
    the file, so it costs what a wrong password costs. Outcomes are
    remembered by (user, hash, password) digest, as the toolkit's cache
    does, so a scraper's known-good credentials cost no bcrypt check after
    the first.
    """

    CACHE_SIZE = 1024

    def __init__(self, users: dict[str, bytes]):
        self.users = users
        self._cost = max((int(HASH.fullmatch(h).group(1))
                          for h in users.values()), default=4)
        self._dummy: bytes | None = None
        self._cache: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()

    def key(self, user: str, password: bytes) -> bytes:
        """What identifies these credentials' check (the same key, the
        same outcome): each part hashed on its own, so no choice of user
        name and password can stand for another pair (the toolkit's
        CVE-2022-46146).
        """
        hashed = self.users.get(user, b'')
        return hashlib.sha256(b''.join(
            hashlib.sha256(part).digest() for part in (
                user.encode('utf-8', 'surrogateescape'), hashed,
                password))).digest()

    def cached(self, key: bytes) -> bool | None:
        """The remembered outcome for the credentials of ``key`` (see
        key()), or None: cheap, never runs bcrypt.
        """
        with self._lock:
            outcome = self._cache.get(key)
            if outcome is not None:
                self._cache.move_to_end(key)
            return outcome

    def check(self, user: str, password: bytes,
              key: bytes | None = None) -> bool:
        """Whether ``user`` may read with ``password``: one bcrypt check
        (tens of milliseconds of CPU by design), remembered under ``key``
        (computed if not given).
        """
        hashed = self.users.get(user)
        if hashed is None:
            hashed = self._dummy_hash()
        try:
            ok = bcrypt.checkpw(password[:BCRYPT_MAX_PASSWORD], hashed)
        except ValueError:  # a malformed hash is refused at load
            ok = False
        ok = ok and user in self.users
        if key is None:
            key = self.key(user, password)
        with self._lock:
            self._cache[key] = ok
            if len(self._cache) > self.CACHE_SIZE:
                self._cache.popitem(last=False)
        return ok

    def _dummy_hash(self) -> bytes:
        with self._lock:
            if self._dummy is None:
                self._dummy = bcrypt.hashpw(b'not a password of anyone',
                                            bcrypt.gensalt(self._cost))
            return self._dummy


@dataclasses.dataclass
class WebConfig:
    """What a web configuration file says; empty: plain HTTP, no auth."""

    context: ssl.SSLContext | None = None
    users: dict[str, bytes] = dataclasses.field(default_factory=dict)
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    http2: bool = True
    rate_limit: RateLimit | None = None
    client_allowed_sans: tuple[str, ...] | None = None
    client_auth: str = 'NoClientCert'
    #: a digest of the file and of every file it names: what a reload
    #: compares
    fingerprint: str = ''
    #: settings applied as the toolkit does, but worth a line in the log
    warnings: list[str] = dataclasses.field(default_factory=list)
    passwords: Passwords = dataclasses.field(init=False, repr=False)

    def __post_init__(self):
        self.passwords = Passwords(self.users)

    @property
    def tls(self) -> bool:
        return self.context is not None

    def ssl_context(self) -> ssl.SSLContext | None:
        """The server's TLS context, or None for plain HTTP."""
        return self.context

    def peer_allowed(self, cert: dict | None) -> bool:
        """Whether a verified client certificate (``getpeercert()``) has
        a SAN that ``client_allowed_sans`` lists; True without the list.
        """
        if self.client_allowed_sans is None:
            return True
        if not cert:
            return False
        sans = {value for _, value in cert.get('subjectAltName', ())}
        return bool(sans & set(self.client_allowed_sans))

    def summary(self) -> str:
        """Who may read, in words, for the log."""
        parts = ['https' if self.tls else 'http']
        if self.client_auth != 'NoClientCert':
            parts.append(f'client certificates ({self.client_auth})')
        if self.client_allowed_sans is not None:
            parts.append(f'{len(self.client_allowed_sans)} allowed SANs')
        if self.users:
            parts.append(f'basic auth for {len(self.users)} users')
        if self.rate_limit is not None:
            parts.append(f'rate limit {self.rate_limit.burst} per '
                         f'{self.rate_limit.interval:g}s')
        return ', '.join(parts)

    def check_password(self, user: str, password: str) -> bool:
        """Whether ``user`` may read with ``password``; always True when
        the file names no users.
        """
        if not self.users:
            return True
        raw = password.encode()
        key = self.passwords.key(user, raw)
        cached = self.passwords.cached(key)
        return cached if cached is not None else self.passwords.check(
            user, raw, key)


class _Reader:
    """Reads one file's settings, raising WebConfigError in one line."""

    def __init__(self, path: str):
        self.path = path
        self.directory = os.path.dirname(os.path.abspath(path))
        self.digest = hashlib.sha256()

    def fail(self, reason: str):
        raise WebConfigError(path=self.path, reason=reason)

    def mapping(self, data, where: str) -> dict:
        if data is None:
            return {}
        if not isinstance(data, dict):
            self.fail(f'{where or "the file"} must be a mapping.')
        known = KEYS[where]
        extra = sorted(str(k) for k in set(data) - known)
        if extra:
            self.fail(f'{where + "." if where else ""}{extra[0]} is not a '
                      'setting of the exporter toolkit\'s web configuration: '
                      f'remove it (known: {", ".join(sorted(known))}).')
        return data

    def text(self, data: dict, key: str, where: str) -> str:
        value = data.get(key)
        if value is None:
            return ''
        if not isinstance(value, str):
            self.fail(f'{where}.{key} must be a string.')
        return value

    def file(self, data: dict, key: str, where: str) -> str:
        value = self.text(data, key, where)
        if not value:
            return ''
        value = os.path.join(self.directory, value)
        try:
            with open(value, 'rb') as f:
                self.digest.update(f.read())
        except OSError as e:
            self.fail(f'{where}.{key} {value} cannot be read: '
                      f'{e.strerror}: check the path and its permissions.')
        return value

    def strings(self, data: dict, key: str, where: str) -> list | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(
                isinstance(v, str) for v in value):
            self.fail(f'{where}.{key} must be a list of strings.')
        return value


def _duration(text) -> float | None:
    """Seconds of a Go duration ("1s", "1m30s", "500ms", 0), or None."""
    if isinstance(text, bool):
        return None
    if isinstance(text, int):
        return float(text) * 1e-9
    if not isinstance(text, str):
        return None
    if text in ('0', ''):
        return 0.0
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return total if pos == len(text) and pos else None


def _memfd(name: str, data: str) -> int:
    """An anonymous in-memory file holding ``data``: inline keys are never
    written where another user could read them.
    """
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    os.write(fd, data.encode())
    return fd


TLS = 'tls_server_config'


def _versions(reader: _Reader, tls: dict, config: WebConfig) -> tuple:
    """(minimum, maximum) TLS version: the toolkit's TLS12 to TLS13 by
    default.
    """
    found = []
    for key, default in (('min_version', 'TLS12'), ('max_version', 'TLS13')):
        name = tls.get(key, default)
        if name not in VERSIONS:
            reader.fail(f'{TLS}.{key} {name!r} is an unknown TLS version: '
                        f'use one of {", ".join(VERSIONS)}.')
        found.append(VERSIONS[name])
    low, high = found
    if low > high:
        reader.fail(f'{TLS}.min_version is above max_version, so no client '
                    'could connect: lower min_version or raise max_version.')
    if low < ssl.TLSVersion.TLSv1_2:
        config.warnings.append(f'{TLS}.min_version allows TLS 1.0/1.1, '
                               'which are broken: use TLS12 or TLS13.')
    return low, high


def _suites(reader: _Reader, tls: dict, http2: bool,
            low: ssl.TLSVersion) -> list | None:
    """OpenSSL's names of the TLS 1.2 suites listed, or None for
    OpenSSL's defaults.
    """
    suites = reader.strings(tls, 'cipher_suites', TLS)
    if not suites:
        return None
    for name in suites:
        if name not in TLS12_CIPHERS and name not in TLS13_CIPHERS:
            reader.fail(f'{TLS}.cipher_suites: unknown cipher: {name} (use '
                        'the names of Go\'s crypto/tls, e.g. '
                        'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256).')
    if http2 and low < ssl.TLSVersion.TLSv1_3 and not any(
            n in HTTP2_CIPHERS for n in suites):
        reader.fail(f'{TLS}.cipher_suites is missing an HTTP/2-required '
                    'AES_128_GCM_SHA256 cipher: add '
                    'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, or set '
                    'http_server_config.http2 to false.')
    return [TLS12_CIPHERS[n] for n in suites if n in TLS12_CIPHERS]


def _curve(reader: _Reader, tls: dict) -> str | None:
    """OpenSSL's name of the one curve to use, or None for OpenSSL's
    defaults (all four the toolkit knows, and X448).
    """
    curves = reader.strings(tls, 'curve_preferences', TLS)
    if not curves:
        return None
    for name in curves:
        if name not in CURVES:
            reader.fail(f'{TLS}.curve_preferences: unknown curve: {name} '
                        f'(use {", ".join(CURVES)}).')
    if len(set(curves)) == 1:
        return CURVES[curves[0]]
    if set(curves) != set(CURVES):
        reader.fail(f'{TLS}.curve_preferences: Python\'s ssl applies one '
                    'curve, or all of them (OpenSSL\'s defaults): list one '
                    'curve, or all four.')
    return None


def _load_pair(context: ssl.SSLContext, cert_file: str, key_file: str,
               cert: str, key: str) -> None:
    """The server's certificate and key, from files or inline PEM."""
    fds = []
    try:
        if not cert_file:
            fds.append(_memfd('tls-cert', cert))
            cert_file = f'/proc/self/fd/{fds[-1]}'
        if not key_file:
            fds.append(_memfd('tls-key', key))
            key_file = f'/proc/self/fd/{fds[-1]}'
        context.load_cert_chain(cert_file, key_file)
    finally:
        for fd in fds:
            os.close(fd)


def _client_auth(reader: _Reader, tls: dict, has_ca: bool,
                 config: WebConfig) -> ssl.VerifyMode:
    """The verify mode of client_auth_type, refusing what the toolkit
    refuses and what Python's ssl cannot do.
    """
    auth = tls.get('client_auth_type') or ''
    if auth in UNVERIFIED_CLIENT_AUTH:
        reader.fail(f'{TLS}.client_auth_type {auth} accepts client '
                    'certificates nobody verifies, which Python\'s ssl '
                    'cannot do (and which would let anyone in): use '
                    'RequireAndVerifyClientCert with client_ca_file.')
    if auth not in CLIENT_AUTH:
        reader.fail(f'{TLS}.client_auth_type {auth!r} is an invalid '
                    'ClientAuth: use NoClientCert, VerifyClientCertIfGiven '
                    'or RequireAndVerifyClientCert.')
    verify = CLIENT_AUTH[auth]
    config.client_auth = auth or 'NoClientCert'
    if has_ca and verify == ssl.CERT_NONE:
        reader.fail(f'{TLS}: client CA\'s have been configured without a '
                    'Client Auth Policy: set client_auth_type to '
                    'RequireAndVerifyClientCert (or VerifyClientCertIfGiven),'
                    ' or remove the client CA.')
    sans = reader.strings(tls, 'client_allowed_sans', TLS)
    if sans is not None:
        if verify != ssl.CERT_REQUIRED:
            reader.fail(f'{TLS}.client_allowed_sans requires '
                        'client_auth_type RequireAndVerifyClientCert.')
        config.client_allowed_sans = tuple(sans)
    return verify


def _tls(reader: _Reader, tls: dict, http2: bool, config: WebConfig):
    """config.context from tls_server_config, unless it enables no TLS."""
    cert_file = reader.file(tls, 'cert_file', TLS)
    key_file = reader.file(tls, 'key_file', TLS)
    cert = reader.text(tls, 'cert', TLS)
    key = reader.text(tls, 'key', TLS)
    ca_file = reader.file(tls, 'client_ca_file', TLS)
    ca_text = reader.text(tls, 'client_ca', TLS)
    auth = reader.text(tls, 'client_auth_type', TLS)
    if not any((cert_file, key_file, cert, key, ca_file, ca_text, auth)):
        return
    if not cert_file and not cert:
        reader.fail(f'{TLS} is missing one of cert or cert_file: give the '
                    'server\'s certificate.')
    if not key_file and not key:
        reader.fail(f'{TLS} is missing one of key or key_file: give the '
                    'server\'s private key.')
    verify = _client_auth(reader, tls, bool(ca_file or ca_text), config)
    low, high = _versions(reader, tls, config)
    suites = _suites(reader, tls, http2, low)
    curve = _curve(reader, tls)
    prefer = tls.get('prefer_server_cipher_suites', True)
    if not isinstance(prefer, bool):
        reader.fail(f'{TLS}.prefer_server_cipher_suites must be true or '
                    'false.')

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # A client's renegotiation is refused (and logged once a minute).
    context.options |= ssl.OP_NO_RENEGOTIATION
    try:
        context.minimum_version, context.maximum_version = low, high
        if low < ssl.TLSVersion.TLSv1_2:
            # OpenSSL 3 allows TLS 1.0/1.1 only at security level 0.
            context.set_ciphers('DEFAULT:@SECLEVEL=0')
        if suites:
            context.set_ciphers(':'.join(suites))
        elif suites is not None:  # TLS 1.3 suites only: none for 1.2
            context.minimum_version = ssl.TLSVersion.TLSv1_3
        if not prefer:
            context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
        if curve is not None:
            context.set_ecdh_curve(curve)
        _load_pair(context, cert_file, key_file, cert, key)
    except (ssl.SSLError, OSError, ValueError) as e:
        reader.fail(f'{TLS}: the certificate, key or TLS settings cannot be '
                    f'used: {e}.')
    try:
        if ca_file:
            context.load_verify_locations(cafile=ca_file)
        elif ca_text:
            context.load_verify_locations(cadata=ca_text)
        elif verify != ssl.CERT_NONE:
            # As the toolkit: with no client CA, the system's roots.
            context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    except (ssl.SSLError, OSError, ValueError) as e:
        reader.fail(f'{TLS}: the client CA cannot be used (it must hold PEM '
                    f'certificates): {e}.')
    context.verify_mode = verify
    config.context = context


def _users(reader: _Reader, users) -> dict[str, bytes]:
    if users is None:
        return {}
    if not isinstance(users, dict):
        reader.fail('basic_auth_users must map user names to bcrypt hashes.')
    found = {}
    for user, hashed in users.items():
        raw = str(hashed).encode()
        m = HASH.fullmatch(raw)
        if m is None:
            reader.fail(f'basic_auth_users.{user} is not a whole bcrypt hash '
                        '(hashedSecret too short to be a bcrypted password, '
                        'or malformed): make one with "htpasswd -nBC 10 '
                        f'{user}".')
        cost = int(m.group(1))
        if not 4 <= cost <= 31:
            reader.fail(f'basic_auth_users.{user} has bcrypt cost {cost}, '
                        'outside 4 to 31: make a new hash with "htpasswd '
                        f'-nBC 10 {user}".')
        if cost > MAX_COST:
            reader.fail(f'basic_auth_users.{user} has bcrypt cost {cost}: '
                        'each check would take about '
                        f'{0.06 * 2 ** (cost - 10):.0f} s of CPU, so a few '
                        'clients naming this user would stop the exporter '
                        f'answering; use a cost of at most {MAX_COST} '
                        f'("htpasswd -nBC 10 {user}").')
        found[str(user)] = raw
    return found


def load(path: str) -> WebConfig:
    """The WebConfig of the file at ``path``; WebConfigError (one line)
    for anything the toolkit refuses or the exporter cannot apply.
    """
    reader = _Reader(path)
    try:
        with open(path, 'rb') as f:
            raw = f.read()
        reader.digest.update(raw)
        data = yaml.safe_load(raw)
    except OSError as e:
        reader.fail(f'cannot be read: {e.strerror}: check [exporter] '
                    'web_config_file.')
    except yaml.YAMLError as e:
        mark = getattr(e, 'problem_mark', None)
        line = f' (line {mark.line + 1})' if mark is not None else ''
        reader.fail(f'is not valid YAML{line}: fix the file.')
    data = reader.mapping(data, '')
    http = reader.mapping(data.get('http_server_config'),
                          'http_server_config')
    http2 = http.get('http2', True)
    if not isinstance(http2, bool):
        reader.fail('http_server_config.http2 must be true or false.')
    headers = http.get('headers') or {}
    if not isinstance(headers, dict):
        reader.fail('http_server_config.headers must be a mapping.')
    applied = {}
    for name, value in headers.items():
        if name not in HEADERS:
            reader.fail(f'http_server_config.headers: HTTP header {name!r} '
                        'can not be configured (allowed: '
                        f'{", ".join(HEADERS)}).')
        value = str(value)
        if HEADERS[name] is not None and value not in HEADERS[name]:
            reader.fail(f'http_server_config.headers: invalid value for '
                        f'{name}: expected one of {", ".join(HEADERS[name])},'
                        f' got {value!r}.')
        applied[name] = value
    limit = reader.mapping(data.get('rate_limit'), 'rate_limit')
    rate_limit = None
    if limit:
        interval = _duration(limit.get('interval', 0))
        burst = limit.get('burst', 0)
        if interval is None or interval < 0:
            reader.fail('rate_limit.interval must be a duration such as '
                        f'1s or 500ms, not {limit.get("interval")!r}.')
        if isinstance(burst, bool) or not isinstance(burst, int) or \
                burst < 0:
            reader.fail('rate_limit.burst must be a whole number of '
                        'requests, 0 or more.')
        if interval:
            rate_limit = RateLimit(interval, burst)
    config = WebConfig(users=_users(reader, data.get('basic_auth_users')),
                       headers=applied, http2=http2, rate_limit=rate_limit)
    tls = reader.mapping(data.get(TLS), TLS)
    _tls(reader, tls, http2, config)
    config.fingerprint = reader.digest.hexdigest()
    return config


def from_cert_files(cert_file: str, key_file: str) -> WebConfig:
    """The WebConfig of the deprecated [exporter] tls_cert_file and
    tls_key_file.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    digest = hashlib.sha256()
    for path in (cert_file, key_file):
        with open(path, 'rb') as f:
            digest.update(f.read())
    return WebConfig(context=context, fingerprint=digest.hexdigest())
