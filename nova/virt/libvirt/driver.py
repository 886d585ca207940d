"""The libvirt driver: turns an instance and its image into a guest.

``LibvirtDriver.get_guest_config`` reads the configuration once and builds
the domain from small steps. Each step is a module-level function that takes
plain values and decides one concern, returning fields or a device (or None);
the builder only assembles. Talking to libvirt is ``host.py``'s and
``guest.py``'s job, never this module's.
"""

import dataclasses
import os
import platform
import shutil
import time

from nova import exception
from nova import version
import nova.conf
from nova.objects import image_meta as image_meta_obj
from nova.objects import instance as instance_obj
from nova.virt.libvirt import balloon_policy
from nova.virt.libvirt import config as vconfig
from nova.virt.libvirt import guest as libvirt_guest
from nova.virt.libvirt import host as libvirt_host
from nova.virt.libvirt import local_host
from nova.virt.libvirt import memstats
from nova.virt.libvirt import stats_period
from nova.virt.libvirt import stuck

CONF = nova.conf.CONF

# Virt types whose guests are QEMU machines (and so have a balloon).
QEMU_VIRT_TYPES = ('kvm', 'qemu')


def _get_guest_identity(virt_type: str,
                        instance: instance_obj.Instance) -> dict:
    """Domain type, name, uuid and size."""
    return {
        'virt_type': virt_type,
        'name': instance.name,
        'uuid': instance.uuid,
        'memory': instance.memory_mb * 1024,
        'vcpus': instance.vcpus,
    }


def _get_guest_os(virt_type: str,
                  image_meta: image_meta_obj.ImageMeta) -> dict:
    """How the guest boots: a container init, a kernel, or a disk.

    The architecture is the host's (guests are not emulated across
    architectures here); Ceilometer's discovery reads it from the XML.
    """
    arch = {'os_arch': platform.machine()}
    if virt_type == 'lxc':
        if image_meta.direct_kernel_boot:
            raise exception.InvalidInstance(
                reason='lxc guests do not boot a kernel: give a root '
                       'directory as the disk instead.')
        return {'os_type': 'exe', 'os_init_path': '/sbin/init', **arch}
    if image_meta.direct_kernel_boot:
        return {
            **arch,
            'os_type': 'hvm',
            'os_kernel': image_meta.kernel_path,
            'os_initrd': image_meta.ramdisk_path,
            'os_cmdline': image_meta.os_command_line or None,
        }
    if image_meta.disk_path is None:
        raise exception.InvalidInstance(
            reason=f'A {virt_type} guest needs a kernel or a disk to boot '
                   'from: give one (tools/build-test-image builds a tiny '
                   'test guest and prints its --kernel, --initrd and '
                   '--cmdline; for a libvirtd, build it where its QEMU '
                   'reads: tools/build-test-image '
                   '/var/lib/libvirt/images/nova-libvirt-test).')
    return {'os_type': 'hvm', 'os_boot_dev': 'hd', **arch}


def _get_guest_platform(virt_type: str) -> dict:
    """Firmware features and clock of a QEMU machine; none for lxc."""
    if virt_type not in QEMU_VIRT_TYPES:
        return {}
    return {'acpi': True, 'apic': True, 'clock_offset': 'utc'}


def _get_guest_storage_config(
        virt_type: str, image_meta: image_meta_obj.ImageMeta):
    """The root disk (QEMU) or root file system (lxc), or None."""
    if virt_type == 'lxc':
        if image_meta.disk_path is None:
            raise exception.InvalidInstance(
                reason='An lxc guest needs its root directory as the disk: '
                       'give one.')
        return vconfig.LibvirtConfigGuestFilesys(
            source_type='mount', source_dir=image_meta.disk_path,
            target_dir='/')
    if image_meta.disk_path is None:
        return None
    return vconfig.LibvirtConfigGuestDisk(
        source_type='file', source_device='disk', driver_name='qemu',
        driver_format=image_meta.disk_format,
        source_path=image_meta.disk_path, target_dev='vda',
        target_bus='virtio')


def _get_guest_console_config(virt_type: str, instance_dir: str):
    """A console: QEMU guests log their serial port to console.log."""
    if virt_type == 'lxc':
        return vconfig.LibvirtConfigGuestConsole(type='pty',
                                                 target_type='lxc')
    return vconfig.LibvirtConfigGuestSerial(
        type='file', source_path=os.path.join(instance_dir, 'console.log'),
        target_port=0)


def _get_guest_metadata_config(instance: instance_obj.Instance,
                               image_meta: image_meta_obj.ImageMeta,
                               package: str):
    """Nova's ``<nova:instance>`` metadata, for every virt_type, whole.

    Ceilometer's compute agent (libvirt_metadata discovery, its default)
    meters only domains that carry it, and reads the name, flavor (name,
    id and sizes) and owner ids from it. The flavor's extra specs and the
    image's properties (Nova's since Nova 32) are what a guest's own
    statistics period is read from once it runs. A standalone instance
    has no image or volume in Glance or Cinder: its image's uuid is empty
    (as Nova writes it for one booted from a volume) and it has no Glance
    formats or minimum sizes, no ``<nova:root>`` and no ports.
    """
    return vconfig.LibvirtConfigGuestMetaNovaInstance(
        package=package,
        name=instance.display_name,
        creation_time=instance.created_at.strftime('%Y-%m-%d %H:%M:%S'),
        flavor=vconfig.LibvirtConfigGuestMetaNovaFlavor(
            name=instance.flavor_name, id=instance.flavor_id,
            memory=instance.memory_mb, disk=0, swap=0, ephemeral=0,
            vcpus=instance.vcpus,
            extra_specs=dict(instance.flavor_extra_specs)),
        image=vconfig.LibvirtConfigGuestMetaImage(
            uuid='', properties=image_meta.properties.to_dict()),
        owner=vconfig.LibvirtConfigGuestMetaNovaOwner(
            userid=instance.user_id, username=instance.user_name,
            projectid=instance.project_id,
            projectname=instance.project_name),
        ports=vconfig.LibvirtConfigGuestMetaNovaPorts())


def _get_guest_memballoon_config(virt_type: str, period: int,
                                 free_page_reporting: bool = True):
    """The memory balloon, the whole policy of this feature: ``period``
    and ``free_page_reporting`` as the guest asks for them
    (stats_period.guest_period, balloon_policy.free_page_reporting).

    ============  =========================================  ===============
    virt_type     period > 0                                 period <= 0
    ============  =========================================  ===============
    kvm, qemu     model virtio, autodeflate on,              model none
                  freePageReporting on or off (written
                  either way), <stats period=N/>
    lxc           no balloon (returns None)                  no balloon
    ============  =========================================  ===============

    freePageReporting is written "off" rather than left out, though
    libvirt then leaves QEMU's default (off) alone: the XML says what the
    guest has, and a later QEMU default cannot turn it on unasked.
    """
    if virt_type not in QEMU_VIRT_TYPES:
        return None
    if period <= 0:
        # Not "no element": libvirt would then add a default virtio
        # balloon whose figures are read once and never refreshed. "none"
        # says honestly that this guest reports no statistics; the virtio
        # switches mean nothing on it.
        return vconfig.LibvirtConfigMemoryBalloon(
            model='none', autodeflate=None, free_page_reporting=None)
    return vconfig.LibvirtConfigMemoryBalloon(
        model='virtio', autodeflate=True,
        free_page_reporting=bool(free_page_reporting), period=period)


def _check_virt_type(virt_type: str, local: bool,
                     kvm_unusable: str | None) -> None:
    """Refuse, in one line, a virt_type this host cannot run: kvm where
    the QEMU the connection starts cannot use KVM (``kvm_unusable``: why,
    or None). A remote libvirtd decides for itself. (A kvm guest can still
    hang where /dev/kvm is usable but the CPU lacks what QEMU asks for;
    ``boot --wait`` shows that.)
    """
    if virt_type == 'kvm' and local and kvm_unusable:
        raise exception.InvalidInstance(
            reason=f'[libvirt] virt_type is kvm, but {kvm_unusable}: set '
                   'virt_type = qemu for software emulation (or give that '
                   'user access to /dev/kvm).')


def _guest_facts(name: str, guest: libvirt_guest.Guest
                 ) -> stats_period.GuestFacts:
    """What stats_period.decide needs of ``guest``, read from libvirt."""
    active, persistent = guest.is_active(), guest.is_persistent()
    live = config = None
    if active:
        live = vconfig.domain_facts(guest.get_xml_desc())
    if persistent:
        config = vconfig.domain_facts(guest.get_xml_desc(inactive=True))
    # The domain type and metadata of the definition in force: the
    # running one, else the one it next starts with.
    facts = live or config
    return stats_period.GuestFacts(
        name, facts.domain_type, active, persistent,
        live.balloon if live else None, config.balloon if config else None,
        facts.instance)


def _instance_dir(uuid: str) -> str:
    return os.path.join(CONF.instances_path, uuid)


class LibvirtDriver:
    """Builds guests and runs them through a Host. ``read_only``: the Host
    opens libvirt read-only (VIR_CONNECT_RO), for callers that only read:
    any write is then refused by libvirt itself.
    """

    def __init__(self, host: libvirt_host.Host | None = None,
                 read_only: bool = False):
        self._host = host
        self.read_only = read_only
        self._connection = None

    @property
    def connection(self) -> tuple[str, str]:
        """(URI, why it is that one) of the configured connection."""
        if self._connection is None:
            if self._host is not None:
                self._connection = (self._host.uri, 'given')
            else:
                self._connection = local_host.choose_connection(
                    CONF.libvirt.virt_type, CONF.libvirt.connection_uri,
                    CONF.state_path, local_host.libvirtd_socket())
        return self._connection

    @property
    def host(self) -> libvirt_host.Host:
        """The Host, for the configured URI unless one was given."""
        if self._host is None:
            self._host = libvirt_host.Host(
                self.connection[0],
                stats_workers=CONF.libvirt.mem_stats_poll_workers,
                timeout=CONF.libvirt.mem_stats_poll_timeout,
                read_only=self.read_only)
        return self._host

    def memory_stats_collector(self) -> memstats.MemoryStatsCollector:
        """A collector of this driver's Host, as the configuration says:
        each poll bounded by [libvirt] mem_stats_poll_timeout, a new guest
        ``starting`` for [libvirt] mem_stats_start_grace_seconds, and each
        guest's wanted period the one it asks for (its flavor's, else its
        image's, else [libvirt] mem_stats_period_seconds, read at every
        poll so that a reload applies at once; a guest's answer is kept
        while its metadata and those options stay).
        """
        def wanted(metadata) -> stats_period.Wanted | None:
            return stats_period.asked_period(
                CONF.libvirt.mem_stats_period_seconds, metadata)

        def reporting(metadata) -> balloon_policy.Reporting | None:
            return balloon_policy.metadata_free_page_reporting(
                CONF.libvirt.mem_free_page_reporting, metadata)
        def policy_key() -> tuple:
            # what wanted() and reporting() read besides the metadata
            return (CONF.libvirt.mem_stats_period_seconds,
                    CONF.libvirt.mem_free_page_reporting)
        return memstats.MemoryStatsCollector(
            self.host, timeout=CONF.libvirt.mem_stats_poll_timeout,
            wanted=wanted,
            start_grace=CONF.libvirt.mem_stats_start_grace_seconds,
            reporting=reporting,
            keep_periods=CONF.libvirt.mem_stats_keep_unresponsive_periods,
            policy_key=policy_key)

    def spawn(self, instance: instance_obj.Instance,
              image_meta: image_meta_obj.ImageMeta) -> libvirt_guest.Guest:
        """Define and start the guest; on failure leave nothing behind."""
        # qemu:///system, qemu:///session and qemu:///embed run here
        _check_virt_type(CONF.libvirt.virt_type,
                         self.host.uri.startswith(('qemu:///',
                                                   'qemu+unix:///')),
                         local_host.kvm_unusable(
                             local_host.qemu_user(self.host.uri)))
        config = self.get_guest_config(instance, image_meta)
        instance_dir = self.get_instance_dir(instance)
        os.makedirs(instance_dir, exist_ok=True)
        guest = None
        try:
            guest = self.host.define_guest(config)
            guest.launch()
        except BaseException:
            if guest is not None:
                guest.delete()
            shutil.rmtree(instance_dir, ignore_errors=True)
            raise
        return guest

    def destroy(self, name: str) -> None:
        """Stop and undefine the guest ``name`` and remove its files."""
        guest = self.host.get_guest(name)
        instance_dir = _instance_dir(guest.uuid)
        guest.delete()
        shutil.rmtree(instance_dir, ignore_errors=True)

    def set_memory_stats_period(
            self, period: int, names: list[str] | None = None,
            dry_run: bool = False, stopping=None
    ) -> list[stats_period.Outcome]:
        """Give the guests ``names`` (default: every guest on the
        connection) the statistics period ``period`` (0 stops reports),
        whatever their flavor or image asks, live and/or persistently as
        ``stats_period.decide`` says. See ``_set_periods``.
        """
        given = stats_period.Wanted(max(0, period), 'given')
        return self._set_periods(lambda facts: given, names, dry_run,
                                 stopping)

    def reconcile_memory_stats_period(self, dry_run: bool = False,
                                      stopping=None) -> tuple[int, list]:
        """Bring every guest to the period it asks for, as a compute
        service would at start: its flavor's
        ``hw:mem_stats_period_seconds``, else its image's
        ``hw_mem_stats_period_seconds``, else [libvirt]
        mem_stats_period_seconds (read from its ``<nova:instance>``
        metadata); 0 or below stops the reports of guests that have a
        balloon. Returns (the option's period, outcomes).
        """
        host_period = max(0, CONF.libvirt.mem_stats_period_seconds)
        outcomes = self._set_periods(
            lambda facts: stats_period.metadata_period(host_period,
                                                       facts.metadata),
            None, dry_run, stopping, reporting=True)
        return host_period, outcomes

    def _set_periods(self, period_for, names, dry_run, stopping,
                     reporting: bool = False) -> list[stats_period.Outcome]:
        """Give each guest of ``names`` (default: every guest on the
        connection) the period ``period_for(GuestFacts)`` says (a
        stats_period.Wanted). A guest that fails does not stop the others;
        each libvirt call is bounded by [libvirt] mem_stats_poll_timeout
        (the Host's), so a frozen QEMU or daemon does not hang it.
        ``stopping()``, if given, is asked before each guest: once true,
        no further guest is changed. ``reporting``: each guest's free page
        reporting is compared with what it asks for too, and a difference
        said (libvirt cannot change it: it waits for the guest's
        recreation).
        """
        if names is None:
            guests = {g.name: g for g in self.host.list_guests()}
            names = sorted(guests)
        else:
            # A connection that cannot be opened (or not for writing) is
            # one error for the command, not one per guest.
            self.host.connect()
            guests = {}
        outcomes = []
        for name in names:
            if stopping is not None and stopping():
                break
            try:
                guest = guests.get(name) or self.host.get_guest(name)
            except exception.NovaException as e:
                outcomes.append(stats_period.Outcome(name, None, str(e)))
                continue
            outcome = self._set_period(name, guest, period_for, dry_run)
            if reporting and outcome.change is not None:
                outcome = dataclasses.replace(
                    outcome, waits=self._reporting_waits(guest))
            outcomes.append(outcome)
        return outcomes

    @staticmethod
    def _reporting_waits(guest) -> str | None:
        """What a guest's free page reporting waits for, where it differs
        from what the guest asks for, else None.
        """
        try:
            facts = vconfig.domain_facts(guest.get_xml_desc())
        except (exception.NovaException, ValueError):
            return None
        balloon = facts.balloon
        if balloon is None or balloon.model == 'none':
            return None
        wanted = balloon_policy.metadata_free_page_reporting(
            CONF.libvirt.mem_free_page_reporting, facts.instance)
        has = bool(balloon.free_page_reporting)
        if wanted is None or wanted.on == has:
            return None
        return (f'Free page reporting is {"on" if has else "off"}, '
                f'{wanted.why} asks {wanted.word}: libvirt cannot change '
                'it on an existing guest; it applies when the guest is '
                'recreated (in Nova: a hard reboot).')

    def _set_period(self, name, guest, period_for, dry_run):
        try:
            busy = guest.monitor_busy()
            if busy is not None and busy >= stuck.BRIEF_BUSY:
                # libvirt would wait for the job the stuck call holds,
                # live and for the persistent definition alike.
                return stats_period.Outcome(name, None, stats_period.stuck(
                    name, busy))
            facts = _guest_facts(name, guest)
        except (exception.NovaException, ValueError) as e:
            return stats_period.Outcome(name, None, f'{name}: {e}')
        try:
            wanted = period_for(facts)
        except exception.InvalidInstance as e:
            return stats_period.Outcome(
                name, None, f'{name}: cannot tell the period it asks for: '
                            f'{e}')
        period = wanted.seconds
        # how a guest without a balloon gets one: as its own period is
        # decided, whatever set-period was given
        own = stats_period.asked_period(
            CONF.libvirt.mem_stats_period_seconds, facts.metadata)
        change = stats_period.decide(facts, period, wanted.asked,
                                     stats_period.disabled_remedy(own),
                                     dry_run)
        if change.action != stats_period.CHANGE or dry_run:
            return stats_period.Outcome(name, change)
        # Live first, for an immediate effect, then the definition: one
        # call each, as not every driver takes both flags at once.
        done = []
        for where, flag in (('live', change.live),
                            ('the persistent definition', change.config)):
            if not flag:
                continue
            try:
                guest.set_memory_stats_period(
                    period, live=where == 'live', config=where != 'live')
            except exception.NovaException as e:
                partly = f' (changed {done[0]} only)' if done else ''
                return stats_period.Outcome(name, None,
                                            f'{name}: {e}{partly}')
            done.append(where)
        self._record_period_change(guest, period, change)
        return stats_period.Outcome(name, change)

    @staticmethod
    def _record_period_change(guest, period, change) -> None:
        """Write when the period changed into the guest's metadata, where
        it changed, so that every process's collector gives the guest one
        new period to report before calling it stale. Best effort: the
        change itself is done, and this process's collector sees it
        anyway.
        """
        record = vconfig.LibvirtConfigGuestMetaMemStatsPeriod(
            seconds=period, changed_at=int(time.time()))
        try:
            guest.set_metadata(vconfig.metadata_xml(record), record.prefix,
                               record.namespace, live=change.live,
                               config=change.config)
        except exception.NovaException:
            pass

    def get_instance_dir(self, instance: instance_obj.Instance) -> str:
        return _instance_dir(instance.uuid)

    def get_guest_config(
            self, instance: instance_obj.Instance,
            image_meta: image_meta_obj.ImageMeta,
    ) -> vconfig.LibvirtConfigGuest:
        """The complete domain for ``instance`` booting ``image_meta``."""
        virt_type = CONF.libvirt.virt_type
        # the guest's own: its flavor's, else its image's, else the host's
        properties = image_meta.properties.to_dict()
        period = stats_period.guest_period(
            CONF.libvirt.mem_stats_period_seconds,
            instance.flavor_extra_specs, properties).seconds
        reporting = balloon_policy.free_page_reporting(
            CONF.libvirt.mem_free_page_reporting,
            instance.flavor_extra_specs, properties).on
        instance_dir = self.get_instance_dir(instance)

        guest = vconfig.LibvirtConfigGuest(
            **_get_guest_identity(virt_type, instance),
            **_get_guest_os(virt_type, image_meta),
            **_get_guest_platform(virt_type))
        guest.metadata.append(_get_guest_metadata_config(
            instance, image_meta, version.version_string()))
        for device in (
                _get_guest_storage_config(virt_type, image_meta),
                _get_guest_console_config(virt_type, instance_dir),
                _get_guest_memballoon_config(virt_type, period,
                                             reporting)):
            if device is not None:
                guest.add_device(device)
        return guest
