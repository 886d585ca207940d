"""Who may read the exporter: Prometheus' web configuration file.

The format of the Prometheus exporter toolkit's ``web-config.yml``, so an
operator reuses the file their other exporters read::

    tls_server_config:
      cert_file: /etc/nova/exporter.crt
      key_file: /etc/nova/exporter.key
      client_ca_file: /etc/nova/prometheus-ca.crt      # optional
      client_auth_type: RequireAndVerifyClientCert     # optional
      min_version: TLS12                               # optional
    basic_auth_users:
      prometheus: $2y$10$...                           # bcrypt hashes

``load`` reads and checks it (one-line errors naming the file and the
key); ``WebConfig.ssl_context`` and ``WebConfig.check_password`` apply it.
Passwords are checked with the bcrypt library, never by hand. Nothing here
serves HTTP.
"""

import dataclasses
import hashlib
import hmac
import os
import ssl
import threading

import bcrypt
import yaml

from nova import exception

# client_auth_type -> ssl verify mode. The toolkit's RequestClientCert and
# RequireAnyClientCert accept certificates nobody verified, which Python's
# ssl module cannot do (and which let anyone in): refused.
CLIENT_AUTH = {
    'NoClientCert': ssl.CERT_NONE,
    'VerifyClientCertIfGiven': ssl.CERT_OPTIONAL,
    'RequireAndVerifyClientCert': ssl.CERT_REQUIRED,
}
VERSIONS = {'TLS12': ssl.TLSVersion.TLSv1_2,
            'TLS13': ssl.TLSVersion.TLSv1_3}
TLS_KEYS = {'cert_file', 'key_file', 'client_ca_file', 'client_auth_type',
            'min_version', 'max_version'}
TOP_KEYS = {'tls_server_config', 'basic_auth_users', 'http_server_config'}
# A password known good is not checked with bcrypt again (each check costs
# tens of milliseconds by design); at most this many are remembered.
_GOOD_CACHE_SIZE = 64
# Compared against when the user is unknown, so that an unknown user takes
# as long as a wrong password.
_DUMMY_HASH = bcrypt.hashpw(b'unknown user', bcrypt.gensalt(4))


class WebConfigError(exception.NovaException):
    msg_fmt = '%(path)s: %(reason)s'


@dataclasses.dataclass
class WebConfig:
    """What a web configuration file says; empty: plain HTTP, no auth."""

    cert_file: str | None = None
    key_file: str | None = None
    client_ca_file: str | None = None
    client_auth: ssl.VerifyMode = ssl.CERT_NONE
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    max_version: ssl.TLSVersion | None = None
    users: dict[str, bytes] = dataclasses.field(default_factory=dict)
    _good: dict = dataclasses.field(default_factory=dict, repr=False)
    _lock: threading.Lock = dataclasses.field(
        default_factory=threading.Lock, repr=False)

    @property
    def tls(self) -> bool:
        return self.cert_file is not None

    def ssl_context(self) -> ssl.SSLContext | None:
        """The server's TLS context, or None for plain HTTP."""
        if not self.tls:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = self.min_version
        if self.max_version is not None:
            context.maximum_version = self.max_version
        context.load_cert_chain(self.cert_file, self.key_file)
        if self.client_ca_file is not None:
            context.load_verify_locations(self.client_ca_file)
        context.verify_mode = self.client_auth
        return context

    def check_password(self, user: str, password: str) -> bool:
        """Whether ``user`` may read with ``password`` (bcrypt); always
        True when the file names no users."""
        if not self.users:
            return True
        key = hashlib.sha256(f'{user}\0{password}'.encode()).digest()
        with self._lock:
            if self._good.get(user) is not None and hmac.compare_digest(
                    self._good[user], key):
                return True
        hashed = self.users.get(user)
        try:
            ok = bcrypt.checkpw(password.encode(), hashed or _DUMMY_HASH)
        except ValueError:  # not a bcrypt hash: refused at load, but safe
            ok = False
        ok = ok and hashed is not None
        if ok:
            with self._lock:
                if len(self._good) >= _GOOD_CACHE_SIZE:
                    self._good.clear()
                self._good[user] = key
        return ok


def _file(path: str, where: str, value) -> str:
    if not isinstance(value, str) or not value:
        raise WebConfigError(path=path,
                             reason=f'{where} must be a file path.')
    value = os.path.join(os.path.dirname(path), value)
    if not os.access(value, os.R_OK):
        raise WebConfigError(path=path, reason=f'{where} {value} cannot be '
                                               'read: check the path and '
                                               'its permissions.')
    return value


def _choice(path: str, where: str, value, table: dict):
    if value not in table:
        raise WebConfigError(
            path=path, reason=f'{where} {value!r} is not one of '
                              f'{", ".join(table)}.')
    return table[value]


def _unknown(path: str, where: str, keys, known: set) -> None:
    extra = sorted(set(keys) - known)
    if extra:
        raise WebConfigError(
            path=path, reason=f'{where}{extra[0]} is not a setting '
                              'nova-libvirt-exporter knows: remove it '
                              f'(known: {", ".join(sorted(known))}).')


def load(path: str) -> WebConfig:
    """The WebConfig of the file at ``path``; WebConfigError (one line)
    for anything it cannot apply."""
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise WebConfigError(path=path, reason=f'cannot be read: '
                                               f'{e.strerror}.') from None
    except yaml.YAMLError as e:
        mark = getattr(e, 'problem_mark', None)
        line = f' (line {mark.line + 1})' if mark is not None else ''
        raise WebConfigError(path=path,
                             reason=f'is not valid YAML{line}.') from None
    data = data or {}
    if not isinstance(data, dict):
        raise WebConfigError(path=path, reason='must be a YAML mapping.')
    _unknown(path, '', data, TOP_KEYS)
    if data.get('http_server_config'):
        raise WebConfigError(path=path, reason='http_server_config is not '
                                               'supported: remove it.')
    config = WebConfig()
    tls = data.get('tls_server_config') or {}
    if not isinstance(tls, dict):
        raise WebConfigError(path=path,
                             reason='tls_server_config must be a mapping.')
    _unknown(path, 'tls_server_config.', tls, TLS_KEYS)
    if tls:
        if not tls.get('cert_file') or not tls.get('key_file'):
            raise WebConfigError(path=path, reason='tls_server_config needs '
                                                   'both cert_file and '
                                                   'key_file.')
        config.cert_file = _file(path, 'cert_file', tls['cert_file'])
        config.key_file = _file(path, 'key_file', tls['key_file'])
        auth = tls.get('client_auth_type', 'NoClientCert')
        config.client_auth = _choice(path, 'client_auth_type', auth,
                                     CLIENT_AUTH)
        if tls.get('client_ca_file') is not None:
            config.client_ca_file = _file(path, 'client_ca_file',
                                          tls['client_ca_file'])
        elif config.client_auth != ssl.CERT_NONE:
            raise WebConfigError(path=path, reason=f'client_auth_type '
                                                   f'{auth} needs '
                                                   'client_ca_file.')
        if 'min_version' in tls:
            config.min_version = _choice(path, 'min_version',
                                         tls['min_version'], VERSIONS)
        if 'max_version' in tls:
            config.max_version = _choice(path, 'max_version',
                                         tls['max_version'], VERSIONS)
        try:
            config.ssl_context()
        except (ssl.SSLError, OSError) as e:
            raise WebConfigError(path=path, reason=f'the certificate or key '
                                                   f'cannot be used: {e}.'
                                 ) from None
    users = data.get('basic_auth_users') or {}
    if not isinstance(users, dict):
        raise WebConfigError(path=path, reason='basic_auth_users must map '
                                               'user names to bcrypt '
                                               'hashes.')
    for user, hashed in users.items():
        hashed = str(hashed).encode()
        if not hashed.startswith((b'$2a$', b'$2b$', b'$2y$')):
            raise WebConfigError(
                path=path, reason=f'the password of {user} is not a bcrypt '
                                  'hash: make one with "htpasswd -nBC 10 '
                                  f'{user}".')
        config.users[str(user)] = hashed
    return config


def from_cert_files(cert_file: str, key_file: str) -> WebConfig:
    """The WebConfig of the deprecated [exporter] tls_cert_file and
    tls_key_file."""
    return WebConfig(cert_file=cert_file, key_file=key_file)
