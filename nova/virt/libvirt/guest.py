"""One libvirt domain: start, stop, read its XML and memory statistics.

``Guest`` wraps a ``virDomain``. Every libvirt failure becomes
LibvirtCallFailed, which keeps libvirt's message and adds the domain and the
call. With host.py, the only importer of libvirt-python; it must not read
nova.conf.
"""

import contextlib

import libvirt

from nova import exception
from nova.virt.libvirt import config as vconfig


class Guest:

    def __init__(self, domain: 'libvirt.virDomain'):
        self._domain = domain

    @property
    def name(self) -> str:
        return self._domain.name()

    @property
    def uuid(self) -> str:
        return self._domain.UUIDString()

    @property
    def domain_id(self) -> int:
        """The running domain's id (new on every start), -1 when off."""
        return self._domain.ID()

    @contextlib.contextmanager
    def _call(self, call: str):
        try:
            yield
        except libvirt.libvirtError as e:
            raise exception.LibvirtCallFailed(
                call=call, name=self.name,
                reason=e.get_error_message()) from None

    def launch(self) -> None:
        """Start the defined domain."""
        with self._call('create()'):
            self._domain.create()

    def is_active(self) -> bool:
        with self._call('isActive()'):
            return bool(self._domain.isActive())

    def is_persistent(self) -> bool:
        """Whether the domain has a persistent definition (not transient)."""
        with self._call('isPersistent()'):
            return bool(self._domain.isPersistent())

    def poweroff(self) -> None:
        """Stop the domain at once if it runs (virsh destroy)."""
        with self._call('destroy()'):
            try:
                self._domain.destroy()
            except libvirt.libvirtError as e:
                if e.get_error_code() != libvirt.VIR_ERR_OPERATION_INVALID:
                    raise  # anything but "domain is not running"

    def undefine(self) -> None:
        with self._call('undefine()'):
            self._domain.undefine()

    def delete(self) -> None:
        """Stop and undefine; a domain already gone is not an error."""
        for step in (self.poweroff, self.undefine):
            try:
                step()
            except exception.LibvirtCallFailed:
                if self._exists():
                    raise

    def _exists(self) -> bool:
        try:
            self._domain.info()
        except libvirt.libvirtError as e:
            if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return False
            raise
        return True

    def get_xml_desc(self, inactive: bool = False) -> str:
        flags = libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0
        with self._call('XMLDesc()'):
            return self._domain.XMLDesc(flags)

    def get_config(self) -> vconfig.LibvirtConfigGuest:
        """The domain as libvirt stores it, parsed."""
        return vconfig.LibvirtConfigGuest().parse_str(self.get_xml_desc())

    def get_metadata(self, namespace: str) -> str | None:
        """virDomainGetMetadata: the element of ``namespace`` in the
        domain's <metadata>, as XML text; None when it has none."""
        try:
            return self._domain.metadata(
                libvirt.VIR_DOMAIN_METADATA_ELEMENT, namespace)
        except libvirt.libvirtError as e:
            if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN_METADATA:
                return None
            raise exception.LibvirtCallFailed(
                call='metadata()', name=self.name,
                reason=e.get_error_message()) from None

    def get_memory_stats(self) -> dict[str, int]:
        """virDomainMemoryStats: libvirt's names to KiB (or seconds)."""
        with self._call('memoryStats()'):
            return dict(self._domain.memoryStats())

    def set_memory_stats_period(self, period: int, live: bool = True,
                                config: bool = False) -> None:
        """virDomainSetMemoryStatsPeriod: live, in the persistent
        definition, or both; 0 stops the guest's reports."""
        flags = 0
        if live:
            flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
        if config:
            flags |= libvirt.VIR_DOMAIN_AFFECT_CONFIG
        with self._call('setMemoryStatsPeriod()'):
            self._domain.setMemoryStatsPeriod(period, flags)
