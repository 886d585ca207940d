"""Small helpers shared by the object layer and the XML model.

Pure functions only: no libvirt, no nova.conf.
"""

import re

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
