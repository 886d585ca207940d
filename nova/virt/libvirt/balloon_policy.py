"""The balloon's free page reporting for a guest: a decision of plain
values, as the statistics period's is (nova.virt.libvirt.stats_period).

Nova gives every balloon ``freePageReporting="on"`` (since Nova 32).
KubeVirt turns it off where it costs more than it returns: reporting costs
the guest vCPU time in exits, a hugepage-backed guest gains nothing from
returning 4 KiB pages, and realtime or dedicated-CPU guests are the ones
that cannot spare the exits. ``free_page_reporting`` decides it for a
guest from its flavor's extra specs, its image's properties and the
host's ``[libvirt] mem_free_page_reporting``; the driver writes it, the
collector and ``reconcile`` compare a guest with it. Libvirt cannot change
it on an existing guest: it applies when the guest is defined again.

autodeflate stays as Nova has it (on): neither KubeVirt nor libvirt's
documentation gives a reason to turn it off per flavor, and none was
measured here.

This module must not import libvirt or read nova.conf.
"""

import dataclasses
import re

from nova import exception
from nova.api.validation.extra_specs import hw as hw_specs
from nova.objects import image_meta as image_meta_obj

EXTRA_SPEC = hw_specs.MEM_FREE_PAGE_REPORTING.name
IMAGE_PROPERTY = 'hw_mem_free_page_reporting'
OPTION = '[libvirt] mem_free_page_reporting'

# Page sizes that are not hugepages (Nova's aliases, and 4 KiB).
_SMALL = ('small', 'any')
_FOUR_KIB = re.compile(r'4([kK]i?)?(b|B)?|4096(b|B)?')


@dataclasses.dataclass(frozen=True)
class Reporting:
    """Whether a guest's balloon reports freed pages, and what decided it:
    'flavor', 'image', 'hugepages', 'realtime', 'dedicated' or 'host'.
    """

    on: bool
    source: str
    #: the extra spec or property that decided it, as given (for 'why')
    detail: str = ''

    @property
    def why(self) -> str:
        """What decided it, as the operator would change it."""
        if self.source == 'host':
            return OPTION
        return {'flavor': f'its flavor extra spec {EXTRA_SPEC}',
                'image': f'its image property {IMAGE_PROPERTY}'}.get(
            self.source, f'its flavor ({self.detail})')

    @property
    def word(self) -> str:
        return 'on' if self.on else 'off'


def _shown(value) -> str:
    """A property's value as the operator wrote it: booleans in lower
    case (the CLI hands them parsed).
    """
    return str(value).lower() if isinstance(value, bool) else str(value)


def _page_size(extra_specs: dict, image: image_meta_obj.ImageMetaProps
               ) -> tuple[str, str] | None:
    """(the page size, where it is set) the guest is given, as Nova
    decides it: the flavor's ``hw:mem_page_size``; the image's
    ``hw_mem_page_size`` only where the flavor allows one (large or any).
    """
    flavor = extra_specs.get(hw_specs.MEM_PAGE_SIZE.name)
    if flavor is not None:
        flavor = hw_specs.MEM_PAGE_SIZE.parse(flavor)
    if flavor in ('large', 'any') and image.hw_mem_page_size is not None:
        return (image.hw_mem_page_size,
                f'hw:mem_page_size={flavor} and its image\'s '
                f'hw_mem_page_size={image.hw_mem_page_size}')
    if flavor is not None:
        return flavor, f'hw:mem_page_size={flavor}'
    return None


def _hugepages(size: str) -> bool:
    return size not in _SMALL and not _FOUR_KIB.fullmatch(size)


def free_page_reporting(host_default: bool, extra_specs: dict | None = None,
                        image_properties: dict | None = None) -> Reporting:
    """Whether a guest of a flavor with ``extra_specs`` booted from an image
    with ``image_properties`` (names to values, text or Python) reports its
    freed pages, on a host whose option says ``host_default``.

    =========  =======  =====================================  =========
    flavor's   image's  the flavor asks for hugepages,         reporting
    spec       prop.    realtime or dedicated CPUs
    =========  =======  =====================================  =========
    set        unset,   any                                    flavor's
               or same
    unset      false    any                                    off
    unset      any      yes (KubeVirt turns it off)            off
    unset      true     no                                     on
    unset      unset    no                                     option's
    set        other    any                                    refused
    =========  =======  =====================================  =========

    Only the flavor's own spec overrides KubeVirt's reasons: an image
    cannot ask a hugepage flavor's guests to report 4 KiB pages. A value
    that is not a boolean raises ValidationError, a disagreement
    FlavorImageConflict.
    """
    specs = extra_specs or {}
    image = image_meta_obj.ImageMetaProps.from_dict(
        {k: v for k, v in (image_properties or {}).items()
         if k in (IMAGE_PROPERTY, 'hw_mem_page_size')})
    raw_flavor = specs.get(EXTRA_SPEC)
    flavor = None if raw_flavor is None else \
        hw_specs.MEM_FREE_PAGE_REPORTING.parse(raw_flavor)
    wanted = image.hw_mem_free_page_reporting
    if flavor is not None and wanted is not None and flavor != wanted:
        raise exception.FlavorImageConflict(
            setting='free page reporting', flavor_key=EXTRA_SPEC,
            flavor_val=raw_flavor, image_key=IMAGE_PROPERTY,
            image_val=_shown(image_properties[IMAGE_PROPERTY]))
    if flavor is not None:
        return Reporting(flavor, 'flavor')
    if wanted is False:
        return Reporting(False, 'image')
    size = _page_size(specs, image)
    if size is not None and _hugepages(size[0]):
        return Reporting(False, 'hugepages', size[1])
    realtime = specs.get(hw_specs.CPU_REALTIME.name)
    if realtime is not None and hw_specs.CPU_REALTIME.parse(realtime):
        return Reporting(False, 'realtime', f'hw:cpu_realtime={realtime}')
    policy = specs.get(hw_specs.CPU_POLICY.name)
    if policy is not None and \
            hw_specs.CPU_POLICY.parse(policy) == 'dedicated':
        return Reporting(False, 'dedicated', 'hw:cpu_policy=dedicated')
    if wanted is True:
        return Reporting(True, 'image')
    return Reporting(bool(host_default), 'host')


def metadata_free_page_reporting(host_default: bool, metadata=None
                                 ) -> Reporting | None:
    """``free_page_reporting`` from a guest's
    LibvirtConfigGuestMetaNovaInstance (None: a guest without Nova's
    metadata has the option's); None where its metadata asks for what it
    cannot have (a bad value, a flavor and image that disagree).
    """
    flavor = metadata.flavor if metadata is not None else None
    image = metadata.image if metadata is not None else None
    try:
        return free_page_reporting(
            host_default, flavor.extra_specs if flavor is not None else None,
            image.properties if image is not None else None)
    except exception.InvalidInstance:
        return None
