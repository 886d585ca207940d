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


def register() -> list[base.ExtraSpecValidator]:
    return [MEM_STATS_PERIOD]
