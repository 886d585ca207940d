"""Extra specs of the ``hw`` namespace that this slice reads."""

from nova import utils
from nova.api.validation.extra_specs import base

MEM_STATS_PERIOD = base.ExtraSpecValidator(
    name='hw:mem_stats_period_seconds',
    description=(
        "How often, in seconds, QEMU asks the guest's balloon driver for "
        'fresh memory statistics. Overrides the image property '
        'hw_mem_stats_period_seconds and [libvirt] '
        'mem_stats_period_seconds for guests of this flavor.'),
    value={
        'type': int,
        'max': utils.INT_MAX,
        'description': 'The statistics period in seconds',
        'note': '0 or below disables statistics',
    },
)


MEM_FREE_PAGE_REPORTING = base.ExtraSpecValidator(
    name='hw:mem_free_page_reporting',
    description=(
        "Whether the guest's balloon reports the pages it frees to the host "
        '(virtio free page reporting), so the host can reclaim them. '
        'Overrides the image property hw_mem_free_page_reporting, the '
        'defaults for hugepage, realtime and dedicated-CPU flavors (off) '
        'and [libvirt] mem_free_page_reporting for guests of this flavor.'),
    value={'type': bool, 'description': 'Whether pages are reported'},
)

# Nova's own extra specs that decide the balloon's default free page
# reporting, validated as Nova validates them.
MEM_PAGE_SIZE = base.ExtraSpecValidator(
    name='hw:mem_page_size',
    description=(
        'The size of the memory pages the guest is given: small, large, '
        'any, or a size (2MB, 1GB, 2048).'),
    value={'type': str,
           'pattern': r'(large|small|any|\d+([kKMGT]i?)?(b|bit|B)?)',
           'shape': 'small, large, any, or a size such as 2MB or 1GB',
           'description': 'The memory page size'},
)
CPU_REALTIME = base.ExtraSpecValidator(
    name='hw:cpu_realtime',
    description='Whether the guest has realtime vCPUs.',
    value={'type': bool, 'description': 'Whether vCPUs are realtime'},
)
CPU_POLICY = base.ExtraSpecValidator(
    name='hw:cpu_policy',
    description='How the guest\'s vCPUs are placed on host CPUs.',
    value={'type': str, 'enum': ['shared', 'dedicated', 'mixed'],
           'description': 'The CPU policy'},
)


def register() -> list[base.ExtraSpecValidator]:
    return [MEM_STATS_PERIOD, MEM_FREE_PAGE_REPORTING, MEM_PAGE_SIZE,
            CPU_REALTIME, CPU_POLICY]
