"""Small helpers shared by the object layer and the XML model.

Pure functions only: no libvirt, no nova.conf.
"""

import difflib
import re

# The largest value libvirt keeps in a C int (a statistics period).
INT_MAX = 2147483647

# Characters XML 1.0 cannot carry: C0 controls but tab, newline and
# carriage return; lone surrogates (what Python makes of bytes in a path or
# argument that are not UTF-8); U+FFFE and U+FFFF.
_NOT_XML = re.compile('[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]')


def xml_problem(text: str) -> str | None:
    """Why ``text`` cannot go into libvirt's XML, or None if it can."""
    found = _NOT_XML.search(text)
    if found is None:
        return None
    char = found.group()
    if '\ud800' <= char <= '\udfff':
        return f'is not valid UTF-8 (at character {found.start() + 1})'
    return (f'contains the control character {char!r} (at character '
            f'{found.start() + 1})')


# Longest value echoed in an error message.
MAX_SHOWN_VALUE = 60


def shorten(text: str, limit: int = MAX_SHOWN_VALUE) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was."""
    if len(text) <= limit:
        return text
    return f'{text[:limit]}... ({len(text)} characters)'


def shown(value) -> str:
    """``value`` as an error message quotes it: repr (control characters
    and undecodable bytes escaped), cut by ``shorten``.
    """
    return shorten(repr(value))


# Words a boolean setting takes (any case), as Nova's strict parsing does.
_TRUE = ('1', 't', 'true', 'on', 'y', 'yes')
_FALSE = ('0', 'f', 'false', 'off', 'n', 'no')
_INTEGER = re.compile('-?[0-9]+')


def expected_value(spec: dict) -> str:
    """What a setting described by ``spec`` takes, for an error message.

    ``spec`` is a flavor extra spec's or image property's value
    description: ``type`` (int, bool or str), and for an int its ``min``
    and ``max``, for a str its ``enum``, or its ``pattern`` (a regular
    expression it must match whole) said as its ``shape``; ``note``, if
    any, follows in brackets.
    """
    kind = spec['type']
    if kind is bool:
        text = 'true or false (or yes/no, on/off, 1/0)'
    elif kind is int:
        low, high = spec.get('min'), spec.get('max')
        if low is not None and high is not None:
            text = f'an integer from {low} to {high}'
        elif high is not None:
            text = f'an integer of at most {high}'
        elif low is not None:
            text = f'an integer of at least {low}'
        else:
            text = 'an integer'
    elif spec.get('enum'):
        text = 'one of ' + ', '.join(spec['enum'])
    elif spec.get('shape'):
        text = spec['shape']
    else:
        text = 'text'
    return text + (f' ({spec["note"]})' if spec.get('note') else '')


def parse_value(spec: dict, raw):
    """``raw`` (the text a flavor or image holds, or a Python value) as
    ``spec`` describes it; ValueError if it does not fit.

    An int is decimal digits with an optional leading "-" and blanks
    around; never a bool, "1.0", "1_000" or "+1".
    """
    kind = spec['type']
    if isinstance(raw, bool) and kind is not bool:
        raise ValueError(raw)
    if kind is int:
        text = str(raw).strip()
        if not _INTEGER.fullmatch(text):
            raise ValueError(raw)
        value = int(text)
        if ((spec.get('min') is not None and value < spec['min']) or
                (spec.get('max') is not None and value > spec['max'])):
            raise ValueError(raw)
        return value
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        word = str(raw).strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise ValueError(raw)
    text = str(raw)
    if spec.get('enum') and text not in spec['enum']:
        raise ValueError(raw)
    if spec.get('pattern') and not re.fullmatch(spec['pattern'], text):
        raise ValueError(raw)
    return text


# How alike (difflib's ratio) an unknown name and a known one must be to
# call the unknown one a misspelling: "hw:mem_stats_period_second" and
# "hw_mem_stats_period_seconds" are (0.98, 0.96); "hw:mem_stats_period"
# (0.83) and "hw:mem_page_size" (0.56) are not.
NEAR_MISS = 0.9


def near_miss(name: str, known) -> str | None:
    """The name of ``known`` that ``name`` is surely a misspelling of, or
    None (for a known name too).
    """
    if name in known:
        return None
    # Keys are case-sensitive (as in Nova): another case is a misspelling
    lowered = {key.lower(): key for key in known}
    found = difflib.get_close_matches(name.lower(), list(lowered), n=1,
                                      cutoff=NEAR_MISS)
    return lowered[found[0]] if found else None
