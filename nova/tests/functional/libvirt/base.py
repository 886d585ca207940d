"""Real guests on real QEMU, for functional tests.

One embedded QEMU root per test process (stestr keeps all functional tests
in one worker: only one process may hold a root), the driver's own default
URI for it, and the test guest image from nova.testimage.
Every guest a test starts is destroyed and undefined in cleanup, and the
cleanup checks that its QEMU process is gone.
"""

import atexit
import os
import platform
import shutil
import signal
import tempfile

import fixtures

from nova import exception
from nova import test
from nova import testimage
from nova.objects import image_meta as image_meta_obj
from nova.objects import instance as instance_obj
from nova.tests.fixtures import private_libvirtd
from nova.virt.libvirt import driver as libvirt_driver
from nova.virt.libvirt import embed
from nova.virt.libvirt import host as libvirt_host

IMAGE_CACHE = os.environ.get('NOVA_LIBVIRT_IMAGE_CACHE',
                             testimage.DEFAULT_CACHE)

# Guest-side figures: only a balloon driver with a period reports these.
GUEST_KEYS = ('unused', 'available', 'usable')


def host_cannot_run_qemu() -> str | None:
    """Why this host cannot run these tests at all, or None.

    Missing packages are not a reason: bindep.txt installs them, and a
    test that needs them fails loudly instead.
    """
    if platform.machine() != 'x86_64':
        return (f'the test guest is an x86_64 Debian kernel; this host is '
                f'{platform.machine()}')
    if os.geteuid() != 0:
        return 'the embedded QEMU driver runs QEMU as root: run as root'
    return None


def embed_uri(state_path: str) -> str:
    """The embedded driver's URI under ``state_path``, as nova-libvirt
    makes it when no libvirtd runs.
    """
    return embed.embed_uri(os.path.join(state_path, 'libvirt',
                                               'qemu-embed'))


class _Shared:
    """What all functional tests of one process share."""

    state_path = None
    host = None
    images = None

    @classmethod
    def get(cls):
        if cls.state_path is None:
            # The run's directory, not $TMPDIR: oslotest points that at the
            # current test's own. A short name: QEMU's sockets live under
            # the root, and a socket path may not exceed 107 bytes (the
            # longest here, a monitor's, is the root's plus 54).
            cls.state_path = tempfile.mkdtemp(
                prefix='ft-', dir=private_libvirtd.RUN_TMP)
            atexit.register(cls.close)
            cls.host = libvirt_host.Host(embed_uri(cls.state_path))
            cls.host.connect()
            cls.images = testimage.get_images(IMAGE_CACHE)
        return cls

    @classmethod
    def close(cls):
        if cls.host is not None:
            cls.host.close()
        if cls.state_path is not None:
            shutil.rmtree(cls.state_path, ignore_errors=True)


def qemu_processes(name: str, scope: str) -> list[int]:
    """Pids of live QEMU processes running the guest ``name`` whose
    command line names ``scope`` (a directory of the test's own: its
    embedded root, or where it copied the image), so that a test never
    finds, let alone stops, a QEMU another run or the host started under
    the same name.
    """
    pids = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            with open(f'/proc/{pid}/cmdline', 'rb') as f:
                argv = f.read().split(b'\0')
        except OSError:
            continue  # gone meanwhile
        if argv and b'qemu-system' in argv[0] and any(
                arg.startswith(f'guest={name},'.encode()) or
                arg == f'guest={name}'.encode() for arg in argv) and (
                scope.encode() in b'\0'.join(argv)):
            pids.append(int(pid))
    return pids


class RealQemuTestCase(test.TestCase):
    """Boots real guests (virt_type qemu) on the embedded driver."""

    def setUp(self):
        super().setUp()
        reason = host_cannot_run_qemu()
        if reason:
            self.skipTest(f'Cannot run QEMU on this host: {reason}.')
        self.useFixture(fixtures.Timeout(240, gentle=True))
        shared = _Shared.get()
        self.state_path = shared.state_path
        self.images = shared.images
        self.flags(state_path=self.state_path,
                   instances_path=os.path.join(self.state_path, 'instances'))
        #: the shared embedded root's URI, said outright: an empty
        #: connection_uri means the host's libvirtd where one runs
        self.embed_uri = embed_uri(self.state_path)
        self.flags(virt_type='qemu', connection_uri=self.embed_uri,
                   group='libvirt')
        self.driver = libvirt_driver.LibvirtDriver(host=shared.host)

    def boot(self, name: str, period: int, variant: str = 'balloon',
             extra_specs: dict | None = None,
             properties: dict | None = None):
        """Start a guest whose cleanup is registered before it exists: the
        option set to ``period``, its flavor's ``extra_specs`` and its
        image's ``properties`` as given.
        """
        self.flags(mem_stats_period_seconds=period, group='libvirt')
        self.addCleanup(self._delete_and_check, name)
        instance = instance_obj.Instance(
            name, memory_mb=256, flavor_extra_specs=extra_specs or {})
        image = self.image_meta(variant)
        if properties:
            image.properties = image_meta_obj.ImageMetaProps.from_dict(
                properties)
        guest = self.driver.spawn(instance, image)
        self.console_log = os.path.join(
            self.driver.get_instance_dir(instance), 'console.log')
        return guest

    def reports(self, guest, count: int, timeout: float) -> list:
        """``count`` distinct last_update values of ``guest``, as they
        arrive.
        """
        seen = []

        def more():
            update = guest.get_memory_stats().get('last_update')
            if update and update not in seen:
                seen.append(update)
            return len(seen) >= count
        self.wait_for(f'{count} reports', more, timeout, interval=0.2)
        return seen

    def image_meta(self, variant: str = 'balloon'):
        """The test image, as kernel/ramdisk image properties."""
        return self.images[variant].image_meta()

    def _delete_and_check(self, name: str):
        try:
            self.driver.destroy(name)
        except exception.InstanceNotFound:
            pass
        self.assertEqual([], qemu_processes(name, self.state_path),
                         f'QEMU still runs guest {name} after destroy')

    def freeze(self, name: str) -> int:
        """SIGSTOP the guest's QEMU; the clean-up always thaws it."""
        pids = qemu_processes(name, self.state_path)
        self.assertEqual(1, len(pids), f'QEMU processes of {name}')
        pid = pids[0]
        # Registered after boot's delete clean-up, so it runs before it
        # (last in, first out): the guest is thawed, then destroyed.
        self.addCleanup(self.thaw, pid)
        os.kill(pid, signal.SIGSTOP)
        return pid

    @staticmethod
    def thaw(pid: int) -> None:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass

    def wait_for_console(self, text: str, timeout: float = 60):
        def seen():
            try:
                with open(self.console_log, errors='replace') as f:
                    return text in f.read()
            except FileNotFoundError:
                return False
        self.wait_for(f'{text!r} on the guest console', seen, timeout)
