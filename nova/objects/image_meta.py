"""The image an instance boots from, and the properties that shape it.

As in Nova, an image is either a disk (``disk_path``) or a kernel/ramdisk
image whose properties give the kernel, the ramdisk and the command line.
For lxc, ``disk_path`` is the directory holding the container's root.

``ImageMetaProps`` are the image's properties (Glance's, in Nova). The
ones this slice reads are described in ``PROPERTIES`` and checked as Nova
checks an image's properties, each by its type; the others are carried as
given into the guest's metadata.
"""

import dataclasses

from nova import exception
from nova import utils

#: {name: value description (as nova.utils.parse_value reads it)} of the
#: image properties this slice reads.
PROPERTIES = {
    'hw_mem_stats_period_seconds': {
        'type': int,
        'max': utils.INT_MAX,
        'description': "How often, in seconds, QEMU asks the guest's "
                       'balloon driver for fresh memory statistics, unless '
                       'the flavor says (hw:mem_stats_period_seconds)',
        'note': '0 or below disables statistics',
    },
    'hw_mem_free_page_reporting': {
        'type': bool,
        'description': "Whether the guest's balloon reports the pages it "
                       'frees to the host, unless the flavor says '
                       '(hw:mem_free_page_reporting)',
    },
    'hw_mem_page_size': {
        'type': str,
        'pattern': r'(large|small|any|\d+([kKMGT]i?)?(b|bit|B)?)',
        'shape': 'small, large, any, or a size such as 2MB or 1GB',
        'description': 'The memory page size the image asks for, where its '
                       "flavor's hw:mem_page_size allows (large or any)",
    },
}


@dataclasses.dataclass(frozen=True)
class ImageMetaProps:
    """An image's properties: those in PROPERTIES as their Python values
    (None: not set), the rest in ``others`` as given.
    """

    hw_mem_stats_period_seconds: int | None = None
    hw_mem_free_page_reporting: bool | None = None
    hw_mem_page_size: str | None = None
    others: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_dict(cls, properties: dict) -> 'ImageMetaProps':
        """The properties ``properties`` holds (names to values, text or
        Python), each known one checked: InvalidInstance-class
        ValidationError, one line naming the property, the value and what
        it takes; a name that is surely a misspelling of a known one is
        refused too, with the name it resembles.
        """
        known, others = {}, {}
        for name, value in properties.items():
            spec = PROPERTIES.get(name)
            if spec is None:
                meant = utils.near_miss(name, PROPERTIES)
                if meant is not None:
                    raise exception.ValidationError(
                        detail=f'Image property {utils.shown(name)} is not '
                               'one nova-libvirt knows: did you mean '
                               f'{meant}?')
                others[name] = value
                continue
            try:
                known[name] = utils.parse_value(spec, value)
            except ValueError:
                raise exception.ValidationError(
                    detail=f'Image property {name}={utils.shown(value)} is '
                           'not valid: expected '
                           f'{utils.expected_value(spec)}.') from None
        return cls(others=others, **known)

    def to_dict(self) -> dict:
        """The properties that are set, known ones first (as Nova's
        ``to_dict`` gives the fields that are set).
        """
        found = {name: getattr(self, name) for name in PROPERTIES
                 if getattr(self, name) is not None}
        found.update(self.others)
        return found

_TEXT_FIELDS = ('disk_path', 'kernel_path', 'ramdisk_path',
                'os_command_line')


@dataclasses.dataclass
class ImageMeta:
    disk_path: str | None = None
    disk_format: str = 'raw'
    kernel_path: str | None = None
    ramdisk_path: str | None = None
    os_command_line: str | None = None
    properties: ImageMetaProps = dataclasses.field(
        default_factory=ImageMetaProps)

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
