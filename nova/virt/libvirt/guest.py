"""One libvirt domain: start, stop, read its XML and memory statistics.

``Guest`` wraps a ``virDomain``. Every libvirt failure becomes
LibvirtCallFailed, which keeps libvirt's message and adds the domain and the
call. Every call goes through the runner the Host gave the guest, which
bounds it (a frozen daemon or QEMU must not hang a command); a Guest made
without one calls libvirt directly. One of the door's modules (see
nova.virt.libvirt.connection), the only importers of libvirt-python; it
must not read nova.conf.
"""

from nova import exception
from nova.virt.libvirt import api
from nova.virt.libvirt import config as vconfig
from nova.virt.libvirt import stuck


def _direct(what: str, name: str, fn, slow: bool = False):
    return fn()


class Guest:

    def __init__(self, domain, runner=None):
        self._domain = domain
        # runner(what, name, fn, slow) -> fn(), bounded; slow: a call that
        # changes a domain's state (start, stop, define) and may take longer.
        self._runner = runner or _direct

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

    def _call(self, call: str, fn, *args, slow: bool = False,
              ignore: tuple = ()):
        """``fn(*args)`` through the runner; libvirt's errors become
        LibvirtCallFailed, except the error codes in ``ignore``, for which
        None is returned.
        """
        def run():
            try:
                return fn(*args)
            except api.Error as e:
                if e.get_error_code() in ignore:
                    return None
                raise exception.LibvirtCallFailed(
                    call=call, name=self.name,
                    reason=e.get_error_message()) from None
        return self._runner(call, self.name, run, slow)

    def launch(self) -> None:
        """Start the defined domain."""
        self._call('create()', self._domain.create, slow=True)

    def is_active(self) -> bool:
        return bool(self._call('isActive()', self._domain.isActive))

    def is_persistent(self) -> bool:
        """Whether the domain has a persistent definition (not transient)."""
        return bool(self._call('isPersistent()', self._domain.isPersistent))

    def monitor_busy(self) -> float | None:
        """Seconds its QEMU monitor has been busy with a command (a call
        stuck on a stopped or hung QEMU), None when free or not known.
        controlInfo() needs no job, so it answers while a call is stuck.
        """
        return stuck.busy_seconds(self._call(
            'controlInfo()', self._domain.controlInfo,
            ignore=(api.VIR_ERR_NO_SUPPORT,
                    api.VIR_ERR_OPERATION_INVALID)))

    def pause(self) -> None:
        """Suspend the running domain's vCPUs (virsh suspend)."""
        self._call('suspend()', self._domain.suspend, slow=True)

    def resume(self) -> None:
        self._call('resume()', self._domain.resume, slow=True)

    def poweroff(self) -> None:
        """Stop the domain at once if it runs (virsh destroy); one that is
        not running is no error.
        """
        self._call('destroy()', self._domain.destroy, slow=True,
                   ignore=(api.VIR_ERR_OPERATION_INVALID,))

    def undefine(self) -> None:
        self._call('undefine()', self._domain.undefine, slow=True)

    def delete(self) -> None:
        """Stop and undefine; a domain already gone is not an error."""
        for step in (self.poweroff, self.undefine):
            try:
                step()
            except exception.LibvirtCallFailed:
                if self._exists():
                    raise

    def _exists(self) -> bool:
        return self._call('info()', self._domain.info,
                          ignore=(api.VIR_ERR_NO_DOMAIN,)) is not None

    def get_xml_desc(self, inactive: bool = False) -> str:
        flags = api.VIR_DOMAIN_XML_INACTIVE if inactive else 0
        return self._call('XMLDesc()', self._domain.XMLDesc, flags)

    def get_config(self) -> vconfig.LibvirtConfigGuest:
        """The domain as libvirt stores it, parsed."""
        return vconfig.LibvirtConfigGuest().parse_str(self.get_xml_desc())

    def get_metadata(self, namespace: str) -> str | None:
        """virDomainGetMetadata: the element of ``namespace`` in the
        domain's <metadata>, as XML text; None when it has none.
        """
        return self._call('metadata()', self._domain.metadata,
                          api.VIR_DOMAIN_METADATA_ELEMENT, namespace,
                          ignore=(api.VIR_ERR_NO_DOMAIN_METADATA,))

    def set_metadata(self, xml: str, prefix: str, namespace: str,
                     live: bool = True, config: bool = False) -> None:
        """virDomainSetMetadata: replace the element of ``namespace``."""
        self._call('setMetadata()', self._domain.setMetadata,
                   api.VIR_DOMAIN_METADATA_ELEMENT, xml, prefix,
                   namespace, _affect(live, config))

    def get_memory_stats(self) -> dict[str, int]:
        """virDomainMemoryStats: libvirt's names to KiB (or seconds)."""
        return dict(self._call('memoryStats()', self._domain.memoryStats))

    def set_memory_stats_period(self, period: int, live: bool = True,
                                config: bool = False) -> None:
        """virDomainSetMemoryStatsPeriod: live, in the persistent
        definition, or both; 0 stops the guest's reports.
        """
        self._call('setMemoryStatsPeriod()',
                   self._domain.setMemoryStatsPeriod, period,
                   _affect(live, config))


    def set_balloon(self, kib: int) -> None:
        """virDomainSetMemory on the running guest: inflate or deflate
        its balloon to leave it ``kib`` KiB (virsh setmem).
        """
        self._call('setMemory()', self._domain.setMemoryFlags, kib,
                   api.VIR_DOMAIN_AFFECT_LIVE)


def _affect(live: bool, config: bool) -> int:
    flags = 0
    if live:
        flags |= api.VIR_DOMAIN_AFFECT_LIVE
    if config:
        flags |= api.VIR_DOMAIN_AFFECT_CONFIG
    return flags
