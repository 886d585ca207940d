"""Checking a flavor's extra specs against the registered validators.

A known extra spec must fit its validator. An unknown one is carried as
given (a flavor holds extra specs for other services and for parts of
Nova this slice does not have), unless it is so close to a known name
that it is surely a misspelling of it: that one is refused with the
name it resembles, so that a typo does not silently do nothing.
"""

import functools

from nova import exception
from nova import utils
from nova.api.validation.extra_specs import base
from nova.api.validation.extra_specs import hw


@functools.cache
def registry() -> dict[str, base.ExtraSpecValidator]:
    """{name: validator} of every extra spec this slice knows."""
    return {v.name: v for v in hw.register()}


def validate(name: str, value) -> None:
    """Refuse ``name``=``value`` in one line if it is a known extra spec
    that ``value`` does not fit, or a misspelling of one.
    """
    validator = registry().get(name)
    if validator is not None:
        validator.parse(value)
        return
    meant = utils.near_miss(name, registry())
    if meant is not None:
        raise exception.ValidationError(
            detail=f'Flavor extra spec {utils.shown(name)} is not one '
                   f'nova-libvirt knows: did you mean {meant}?')


def check(extra_specs: dict) -> dict:
    """``extra_specs`` as given, once each passed ``validate``."""
    for name, value in extra_specs.items():
        validate(name, value)
    return dict(extra_specs)
