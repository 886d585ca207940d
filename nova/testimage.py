"""A tiny bootable guest that proves memory statistics, built from Debian.

The guest is Debian's ``linux-image-cloud-amd64`` kernel (downloaded with
``apt-get download``, unpacked with ``dpkg-deb``) and a busybox initramfs
whose ``/init`` loads the virtio modules and, in the ``balloon`` variant,
``virtio_balloon``. The ``nodriver`` variant stands for an image whose guest
cannot report statistics. Given ``nova_libvirt_hog=N`` on its command line
(``hog_cmdline``), the ``balloon`` guest makes itself short of memory on
purpose: it sets up swap on zram, fills N MiB of tmpfs with compressible
data and reads it back forever, so that a balloon squeezed below that
working set makes it swap and fault. Nothing else is downloaded.

Images are cached under a directory and built once; a lock makes concurrent
builders wait for each other. This module must not talk to libvirt.
"""

from collections.abc import Callable
import contextlib
import dataclasses
import fcntl
import glob
import gzip
import os
import shutil
import subprocess
import tempfile

from nova import exception
from nova.objects import image_meta as image_meta_obj

KERNEL_PACKAGE = 'linux-image-cloud-amd64'
BUSYBOX = '/bin/busybox'
# Load order matters: each module needs the ones before it.
VIRTIO_MODULES = ('virtio_ring', 'virtio', 'virtio_pci_modern_dev',
                  'virtio_pci_legacy_dev', 'virtio_pci')
BALLOON_MODULE = 'virtio_balloon'
# Swap in memory for the hog, and what it needs (in load order); where
# each is in the kernel package.
SWAP_MODULES = ('zsmalloc', 'lzo-rle', 'zram')
MODULE_DIRS = {'zsmalloc': 'mm', 'lzo-rle': 'crypto',
               'zram': os.path.join('drivers', 'block', 'zram')}
# The images' layout: a cache of another version is built again.
IMAGE_VERSION = '2'
HOG_PARAMETER = 'nova_libvirt_hog'
HOG_READY = 'nova-libvirt test guest hogs'
VARIANTS = ('balloon', 'nodriver')
CMDLINE = 'console=ttyS0 panic=-1 quiet'
# Where the demo, tools/build-test-image and the tests keep the images.
DEFAULT_CACHE = os.path.expanduser('~/.cache/nova-libvirt/test-image')
# Printed on the console once /init has loaded its modules.
READY_LINE = 'nova-libvirt test guest ready'

INIT_SCRIPT = """#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec >/dev/console 2>&1
for module in {modules}; do
    /bin/busybox insmod /lib/modules/$module.ko || \\
        echo "insmod $module failed"
done
echo "{ready} ({variant})"
hog=
for word in $(/bin/busybox cat /proc/cmdline); do
    case $word in {hog}=*) hog=${{word#*=}};; esac
done
if [ -n "$hog" ] && [ -e /lib/modules/zram.ko ]; then
    for module in {swap}; do /bin/busybox insmod /lib/modules/$module.ko; done
    echo lzo-rle > /sys/block/zram0/comp_algorithm
    echo $((hog * 2))M > /sys/block/zram0/disksize
    /bin/busybox mkswap /dev/zram0 >/dev/null
    /bin/busybox swapon /dev/zram0
    /bin/busybox mkdir -p /hog
    /bin/busybox mount -t tmpfs -o size=$((hog + 16))m tmpfs /hog
    # compressible, not zero: swapped out and back, it costs I/O counts
    /bin/busybox yes nova-libvirt | /bin/busybox head -c $((hog * 1048576)) \\
        > /hog/data
    echo "{hog_ready} $hog MiB"
    # a child, so that the OOM killer may take it, never init
    /bin/busybox sh -c 'while true; do /bin/busybox cat /hog/data \\
        > /dev/null; done' &
fi
while true; do /bin/busybox sleep 3600; done
"""


@dataclasses.dataclass(frozen=True)
class TestImage:
    """A kernel/ramdisk image, as image properties would give it."""

    variant: str
    kernel_path: str
    ramdisk_path: str
    os_command_line: str = CMDLINE

    def image_meta(self) -> image_meta_obj.ImageMeta:
        """The image, as kernel/ramdisk image properties give it."""
        return image_meta_obj.ImageMeta(
            kernel_path=self.kernel_path, ramdisk_path=self.ramdisk_path,
            os_command_line=self.os_command_line)

    def hog_cmdline(self, mib: int) -> str:
        """The command line of a guest that holds ``mib`` MiB and reads it
        over and over (the balloon variant).
        """
        return f'{self.os_command_line} {HOG_PARAMETER}={mib}'


def _run(argv: list[str], cwd: str | None = None) -> str:
    try:
        result = subprocess.run(argv, cwd=cwd, capture_output=True,
                                text=True, check=False)
    except FileNotFoundError:
        raise exception.GuestImageBuildFailed(
            reason=f'{argv[0]} is not installed (see bindep.txt).') from None
    if result.returncode != 0:
        last = (result.stderr.strip() or result.stdout.strip())
        last = last.splitlines()[-1] if last else 'no output'
        raise exception.GuestImageBuildFailed(
            reason=f'{" ".join(argv)} failed: {last}')
    return result.stdout


def _apt_download(package: str, dest: str) -> str:
    """Download ``package``'s .deb into ``dest``; the file's path."""
    try:
        _run(['apt-get', 'download', '-q', package], cwd=dest)
    except exception.GuestImageBuildFailed:
        # A fresh machine may have no package lists yet.
        _run(['apt-get', 'update', '-qq'])
        _run(['apt-get', 'download', '-q', package], cwd=dest)
    debs = glob.glob(os.path.join(dest, f'{package}_*.deb'))
    if len(debs) != 1:
        raise exception.GuestImageBuildFailed(
            reason=f'apt-get download {package} gave {debs}')
    return debs[0]


def _fetch_kernel(workdir: str, progress: Callable[[str], None]) -> str:
    """Unpack the cloud kernel package; the directory it went to."""
    progress(f'downloading {KERNEL_PACKAGE} with apt-get')
    meta = _apt_download(KERNEL_PACKAGE, workdir)
    depends = _run(['dpkg-deb', '-f', meta, 'Depends'])
    package = depends.split(',')[0].split()[0].strip()
    if not package.startswith('linux-image-'):
        raise exception.GuestImageBuildFailed(
            reason=f'{KERNEL_PACKAGE} depends on {depends!r}, not a kernel')
    progress(f'downloading {package}')
    deb = _apt_download(package, workdir)
    root = os.path.join(workdir, 'root')
    _run(['dpkg-deb', '-x', deb, root])
    return root


def _write_initramfs(path: str, modules: dict[str, str], variant: str):
    """A gzip'd newc cpio archive holding busybox, modules and /init."""
    names = list(VIRTIO_MODULES)
    extra = []
    if variant == 'balloon':
        names.append(BALLOON_MODULE)
        extra = list(SWAP_MODULES)
    with tempfile.TemporaryDirectory() as tree:
        for sub in ('bin', 'lib/modules'):
            os.makedirs(os.path.join(tree, sub))
        shutil.copy(BUSYBOX, os.path.join(tree, 'bin', 'busybox'))
        os.symlink('busybox', os.path.join(tree, 'bin', 'sh'))
        for name in names + extra:
            shutil.copy(modules[name],
                        os.path.join(tree, 'lib', 'modules', name + '.ko'))
        init = os.path.join(tree, 'init')
        with open(init, 'w') as f:
            f.write(INIT_SCRIPT.format(
                modules=' '.join(names), ready=READY_LINE, variant=variant,
                hog=HOG_PARAMETER, swap=' '.join(SWAP_MODULES),
                hog_ready=HOG_READY))
        os.chmod(init, 0o755)
        files = sorted(os.path.relpath(os.path.join(d, n), tree)
                       for d, dirs, fs in os.walk(tree) for n in dirs + fs)
        archive = subprocess.run(
            ['cpio', '--quiet', '-o', '-H', 'newc', '-R', '0:0'],
            cwd=tree, input='\n'.join(files).encode(), capture_output=True,
            check=False)
        if archive.returncode != 0:
            raise exception.GuestImageBuildFailed(
                reason='cpio failed: ' + archive.stderr.decode().strip())
    with gzip.open(path + '.tmp', 'wb') as f:
        f.write(archive.stdout)
    os.replace(path + '.tmp', path)


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


@contextlib.contextmanager
def _locked(cache_dir: str):
    os.makedirs(cache_dir, exist_ok=True)
    with open(os.path.join(cache_dir, '.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _paths(cache_dir: str, variant: str) -> TestImage:
    return TestImage(variant=variant,
                     kernel_path=os.path.join(cache_dir, 'vmlinuz'),
                     ramdisk_path=os.path.join(cache_dir,
                                               f'initrd-{variant}.gz'))


def get_images(cache_dir: str,
               progress: Callable[[str], None] = lambda message: None,
               ) -> dict[str, TestImage]:
    """Both variants, built into ``cache_dir`` unless already there."""
    images = {v: _paths(cache_dir, v) for v in VARIANTS}
    stamp = os.path.join(cache_dir, 'version')
    with _locked(cache_dir):
        if all(os.path.exists(i.kernel_path) and os.path.exists(
                i.ramdisk_path) for i in images.values()) and \
                _read(stamp) == IMAGE_VERSION:
            return images
        if not os.path.exists(BUSYBOX):
            raise exception.GuestImageBuildFailed(
                reason=f'{BUSYBOX} is missing: install busybox-static.')
        progress(f'building the test guest image in {cache_dir}')
        with tempfile.TemporaryDirectory(dir=cache_dir) as workdir:
            # apt's sandbox user must be able to write the download dir.
            os.chmod(workdir, 0o755)
            root = _fetch_kernel(workdir, progress)
            kernels = glob.glob(os.path.join(root, 'boot', 'vmlinuz-*'))
            found = {}
            wanted = VIRTIO_MODULES + (BALLOON_MODULE,) + SWAP_MODULES
            for name in wanted:
                where = MODULE_DIRS.get(name,
                                        os.path.join('drivers', 'virtio'))
                hits = glob.glob(os.path.join(
                    root, 'lib', 'modules', '*', 'kernel', where,
                    name + '.ko'))
                if hits:
                    found[name] = hits[0]
            missing = set(wanted) - set(found)
            if len(kernels) != 1 or missing:
                raise exception.GuestImageBuildFailed(
                    reason=f'the kernel package lacks vmlinuz or the '
                           f'modules {sorted(missing)}')
            for image in images.values():
                _write_initramfs(image.ramdisk_path, found, image.variant)
            shutil.copy(kernels[0], images['balloon'].kernel_path + '.tmp')
            os.replace(images['balloon'].kernel_path + '.tmp',
                       images['balloon'].kernel_path)
            # readable by a libvirtd's QEMU user, built where it may enter
            for image in images.values():
                os.chmod(image.kernel_path, 0o644)
                os.chmod(image.ramdisk_path, 0o644)
            with open(stamp, 'w') as f:
                f.write(IMAGE_VERSION)
        progress('test guest image ready')
    return images
