"""Argument types shared by nova-libvirt's commands: each refuses a bad
value with one line naming it and the allowed range. Parsing only.
"""

import argparse

from nova import exception
from nova import utils


class UsageError(exception.NovaException):
    """Bad input on the command line: exit status 2, one line."""
    msg_fmt = '%(reason)s'


def integer(low: int | None = None, high: int | None = None):
    """An argparse type: an integer from ``low`` to ``high``."""
    allowed = utils.expected_value({'type': int, 'min': low, 'max': high})

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


def key_value(text: str) -> tuple[str, str]:
    """An argparse type: ``KEY=VALUE`` (the value may hold "=" and be
    empty; the key may not be).
    """
    key, sep, value = text.partition('=')
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(
            f'{utils.shown(text)} is not KEY=VALUE')
    return key, value


def key_values(pairs, option: str) -> dict:
    """{key: value} of ``pairs`` (key_value's), refusing a key given twice
    with different values in one line naming ``option``.
    """
    found = {}
    for key, value in pairs or ():
        if found.get(key, value) != value:
            raise argparse.ArgumentTypeError(
                f'{option} {key} given twice ({utils.shown(found[key])} and '
                f'{utils.shown(value)}): give it once')
        found[key] = value
    return found
