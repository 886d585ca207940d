"""The hypervisor behind one door: a libvirt connection and its event loop.

``Host`` opens one connection (lazily), runs libvirt's default event loop in
a daemon thread, prepares an embedded QEMU driver's root, and looks guests
up. This module and guest.py are the only importers of libvirt-python; no
other module may import it. It must not read nova.conf: it gets a URI.
"""

import dataclasses
import os
import threading
import urllib.parse

import libvirt

from nova import exception
from nova.virt.libvirt import config as vconfig
from nova.virt.libvirt import guest as libvirt_guest

EMBED_PREFIX = 'qemu:///embed'

# The embedded driver's qemu.conf. stdio_handler: no virtlogd here. user and
# group root: on hosts where /dev/kvm exists but QEMU's default user cannot
# open it, libvirt finds KVM "enabled when probing but not available now"
# and re-probes QEMU on every call (a define took ~40 s); as root it can
# open /dev/kvm and the capabilities cache holds. remember_owner 0: the
# files are root's already, so no xattr bookkeeping (and no warnings).
EMBED_QEMU_CONF = """\
# Written by nova-libvirt for its embedded QEMU driver; rewritten on use.
stdio_handler = "file"
user = "root"
group = "root"
remember_owner = 0
"""

_event_loop_lock = threading.Lock()
_event_loop_thread = None


def _ignore_error(ctx, error) -> None:
    """libvirt prints every error to stderr; we raise ours instead."""


def _start_event_loop() -> None:
    """Register libvirt's default event loop and run it, once a process."""
    global _event_loop_thread
    with _event_loop_lock:
        if _event_loop_thread is not None:
            return
        libvirt.registerErrorHandler(_ignore_error, None)
        libvirt.virEventRegisterDefaultImpl()

        def run():
            while True:
                libvirt.virEventRunDefaultImpl()

        _event_loop_thread = threading.Thread(
            target=run, name='libvirt-event-loop', daemon=True)
        _event_loop_thread.start()


def embed_root_of(uri: str) -> str | None:
    """The root directory of an embedded QEMU URI, else None."""
    if not uri.startswith(EMBED_PREFIX):
        return None
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(uri).query)
    roots = query.get('root')
    return roots[0] if roots else None


def embed_uri(root: str) -> str:
    return f'{EMBED_PREFIX}?root={root}'


def prepare_embed_root(root: str) -> None:
    """Create the embedded driver's root and its etc/qemu.conf."""
    etc = os.path.join(root, 'etc')
    os.makedirs(etc, exist_ok=True)
    path = os.path.join(etc, 'qemu.conf')
    current = None
    if os.path.exists(path):
        with open(path) as f:
            current = f.read()
    if current != EMBED_QEMU_CONF:
        with open(path + '.tmp', 'w') as f:
            f.write(EMBED_QEMU_CONF)
        os.replace(path + '.tmp', path)


# libvirt domain states in which QEMU runs.
_ACTIVE_STATES = frozenset((
    libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_BLOCKED,
    libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_SHUTDOWN,
    libvirt.VIR_DOMAIN_PMSUSPENDED))
# Errors after which a connection is worth reopening once.
_CONNECTION_ERRORS = frozenset((
    libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_ERR_RPC,
    libvirt.VIR_ERR_INVALID_CONN, libvirt.VIR_ERR_INTERNAL_ERROR))


@dataclasses.dataclass(slots=True)
class DomainMemoryStats:
    """One domain's balloon figures, named as virDomainMemoryStats names
    them (``actual``, ``rss``, ``last_update`` ...), in KiB or seconds."""

    guest: libvirt_guest.Guest | None
    name: str
    uuid: str | None
    active: bool
    stats: dict
    error: str | None = None


def balloon_stats_to_memory_stats(record: dict) -> dict:
    """``balloon.*`` keys of the bulk call, renamed as memoryStats() names.

    The bulk call says ``balloon.current`` and ``balloon.last-update``
    where virDomainMemoryStats says ``actual`` and ``last_update``.
    """
    stats = {}
    for key, value in record.items():
        if key.startswith('balloon.') and key != 'balloon.maximum':
            name = key[len('balloon.'):].replace('-', '_')
            stats['actual' if name == 'current' else name] = value
    return stats


def _hint(uri: str) -> str:
    if embed_root_of(uri) is not None:
        return ('install the libvirt and QEMU packages in bindep.txt; only '
                'one process at a time may use an embedded root')
    if uri.startswith('qemu:///system') or uri.startswith('lxc:'):
        return ('install libvirt-daemon-system and start libvirtd, or leave '
                '[libvirt] connection_uri unset to use the embedded QEMU '
                'driver')
    return 'check [libvirt] connection_uri'


class Host:
    """One libvirt connection, opened on first use."""

    def __init__(self, uri: str):
        self.uri = uri
        self._conn = None
        self._lock = threading.Lock()

    def get_connection(self) -> 'libvirt.virConnect':
        with self._lock:
            if self._conn is None:
                self._conn = self._open()
            return self._conn

    def _open(self) -> 'libvirt.virConnect':
        root = embed_root_of(self.uri)
        if self.uri.startswith(EMBED_PREFIX) and root is None:
            raise exception.HypervisorUnavailable(
                uri=self.uri, reason='an embedded URI needs ?root=DIR.')
        if root is not None:
            try:
                prepare_embed_root(root)
            except OSError as e:
                raise exception.HypervisorUnavailable(
                    uri=self.uri,
                    reason=f'cannot prepare {root}: {e.strerror}.') from None
        _start_event_loop()
        try:
            conn = libvirt.open(self.uri)
        except libvirt.libvirtError as e:
            raise exception.HypervisorUnavailable(
                uri=self.uri,
                reason=f'{e.get_error_message()}; {_hint(self.uri)}.'
            ) from None
        return conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                except libvirt.libvirtError:
                    pass  # a connection that died is closed enough
                self._conn = None

    def reconnect(self) -> None:
        """Drop the connection; the next call opens a new one."""
        self.close()

    def get_version(self) -> tuple[int, int, int]:
        """libvirt's version, as (major, minor, micro)."""
        number = self.get_connection().getLibVersion()
        return number // 1000000, number // 1000 % 1000, number % 1000

    def has_min_version(self, version: tuple[int, int, int]) -> bool:
        return self.get_version() >= tuple(version)

    def define_guest(self, config: vconfig.LibvirtConfigGuest
                     ) -> libvirt_guest.Guest:
        """Define (not start) the domain ``config`` describes.

        libvirt validates the XML against its own schema first, so a
        domain it would silently "fix" is refused instead.
        """
        conn = self.get_connection()
        try:
            return libvirt_guest.Guest(conn.defineXMLFlags(
                config.to_xml(), libvirt.VIR_DOMAIN_DEFINE_VALIDATE))
        except libvirt.libvirtError as e:
            raise exception.LibvirtCallFailed(
                call='defineXML()', name=config.name,
                reason=e.get_error_message()) from None

    def get_guest(self, name: str) -> libvirt_guest.Guest:
        conn = self.get_connection()
        try:
            return libvirt_guest.Guest(conn.lookupByName(name))
        except libvirt.libvirtError as e:
            if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                raise exception.InstanceNotFound(name=name,
                                                 uri=self.uri) from None
            raise exception.LibvirtCallFailed(
                call='lookupByName()', name=name,
                reason=e.get_error_message()) from None

    @staticmethod
    def _lookup(conn, names) -> tuple[list, list[str]]:
        """(domains, names not found) for ``names``."""
        domains, missing = [], []
        for name in names:
            try:
                domains.append(conn.lookupByName(name))
            except libvirt.libvirtError as e:
                if e.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                    raise
                missing.append(name)
        return domains, missing

    def _bulk_stats(self, names):
        conn = self.get_connection()
        kinds = libvirt.VIR_DOMAIN_STATS_BALLOON | \
            libvirt.VIR_DOMAIN_STATS_STATE
        if names is None:
            return conn.getAllDomainStats(kinds), []
        domains, missing = self._lookup(conn, names)
        records = conn.domainListGetStats(domains, kinds) if domains else []
        return records, missing

    def _per_domain_stats(self, names) -> list[DomainMemoryStats]:
        """Fallback where the bulk call is unsupported: two calls each."""
        conn = self.get_connection()
        if names is None:
            domains, missing = conn.listAllDomains(0), []
        else:
            domains, missing = self._lookup(conn, names)
        found = []
        for domain in domains:
            guest = libvirt_guest.Guest(domain)
            try:
                active = guest.is_active()
                stats = guest.get_memory_stats() if active else {}
            except exception.LibvirtCallFailed as e:
                found.append(DomainMemoryStats(
                    guest, domain.name(), domain.UUIDString(), False, {},
                    str(e)))
                continue
            found.append(DomainMemoryStats(
                guest, guest.name, guest.uuid, active, stats))
        return found + [_missing(name) for name in missing]

    def get_memory_stats(self, names: list[str] | None = None
                         ) -> list[DomainMemoryStats]:
        """Balloon statistics of every domain (or of ``names``) in one
        libvirt call, virConnectGetAllDomainStats.

        A lost connection is reopened once; a driver without the bulk call
        is read domain by domain. A named domain that does not exist comes
        back with an error, and the rest are still read.
        """
        for attempt in (1, 2):
            conn = self.get_connection()
            try:
                records, missing = self._bulk_stats(names)
                break
            except libvirt.libvirtError as e:
                code = e.get_error_code()
                if code == libvirt.VIR_ERR_NO_SUPPORT:
                    return self._per_domain_stats(names)
                if (attempt == 1 and code in _CONNECTION_ERRORS and
                        not _alive(conn)):
                    self.reconnect()
                    continue
                raise exception.HypervisorUnavailable(
                    uri=self.uri,
                    reason='reading domain statistics failed: '
                           f'{e.get_error_message()}') from None
        found = []
        for domain, record in records:
            found.append(DomainMemoryStats(
                libvirt_guest.Guest(domain), domain.name(),
                domain.UUIDString(),
                record.get('state.state') in _ACTIVE_STATES,
                balloon_stats_to_memory_stats(record)))
        return found + [_missing(name) for name in missing]


def _missing(name: str) -> DomainMemoryStats:
    return DomainMemoryStats(None, name, None, False, {},
                             f'No guest named {name}.')


def _alive(conn) -> bool:
    try:
        return bool(conn.isAlive())
    except libvirt.libvirtError:
        return False
