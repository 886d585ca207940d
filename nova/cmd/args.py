"""Argument types shared by nova-libvirt's commands: each refuses a bad
value with one line naming it and the allowed range. Parsing only.
"""

import argparse

from nova import utils


def integer(low: int | None = None, high: int | None = None):
    """An argparse type: an integer from ``low`` to ``high``."""
    if low is not None and high is not None:
        allowed = f'an integer from {low} to {high}'
    elif low is not None:
        allowed = f'an integer of at least {low}'
    elif high is not None:
        allowed = f'an integer of at most {high}'
    else:
        allowed = 'an integer'

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if (value is None or (low is not None and value < low) or
                (high is not None and value > high)):
            raise argparse.ArgumentTypeError(
                f'{utils.shown(text)} is not {allowed}')
        return value
    return parse
