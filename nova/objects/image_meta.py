"""The image an instance boots from, and the properties that shape it.

As in Nova, an image is either a disk (``disk_path``) or a kernel/ramdisk
image whose properties give the kernel, the ramdisk and the command line.
For lxc, ``disk_path`` is the directory holding the container's root.
"""

import dataclasses

from nova import exception
from nova import utils

_TEXT_FIELDS = ('disk_path', 'kernel_path', 'ramdisk_path',
                'os_command_line')


@dataclasses.dataclass
class ImageMeta:
    disk_path: str | None = None
    disk_format: str = 'raw'
    kernel_path: str | None = None
    ramdisk_path: str | None = None
    os_command_line: str | None = None

    def __post_init__(self):
        for field in _TEXT_FIELDS:
            value = getattr(self, field)
            problem = None if value is None else utils.xml_problem(value)
            if problem:
                raise exception.InvalidInstance(
                    reason=f'Image {field} {utils.shown(value)} {problem}: '
                           'libvirt cannot take it; rename the file or '
                           'fix the text.')
        if self.disk_format not in ('raw', 'qcow2'):
            raise exception.InvalidInstance(
                reason=f'Image disk_format {self.disk_format!r} is not '
                       'valid: expected raw or qcow2.')
        if self.kernel_path is None:
            if self.ramdisk_path is not None or self.os_command_line:
                raise exception.InvalidInstance(
                    reason='A ramdisk or a kernel command line needs a '
                           'kernel: give the kernel too.')
        elif self.disk_path is not None:
            raise exception.InvalidInstance(
                reason='Give either a kernel (with its ramdisk and command '
                       'line) or a disk, not both.')

    @property
    def direct_kernel_boot(self) -> bool:
        return self.kernel_path is not None
