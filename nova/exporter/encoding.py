"""The exposition formats, written fast for the families we make.

prometheus_client's encoders check every character of every name of every
sample against the legacy name rules, to escape what breaks them: at 20
guests (about 500 samples) its OpenMetrics encoder took 5.9 ms and its text
encoder 2.5 ms, a quarter of a real poll, for names that are valid by
construction. Here each name is checked once per family and each guest's
label set is written once per body; anything the fast path does not cover
(a name outside the legacy rules, timestamps, exemplars, native histograms,
units, OpenMetrics-only samples, a name escaping that rewrites valid names)
is left to prometheus_client, whose output is the reference: the unit tests
compare the two byte for byte.

Content negotiation happens once, in ``negotiate()``: the format an
Accept header asks for (as prometheus_client's ``choose_encoder`` chooses
it, but never failing, and always one of a few: what a body is made for)
and whether Accept-Encoding takes gzip (its q-values read). ``encode()``
is then the one way a scrape's body is made: the families a name filter
asks for, in that format. The fast path is chosen from the content type
that choice gives (format, version, escaping: an HTTP contract), never from
which function the library returned.
"""

import dataclasses
import functools
import gzip
import re
import typing

from prometheus_client import exposition
from prometheus_client import utils as prom_utils
from prometheus_client.openmetrics import exposition as om_exposition

# Names that every encoder writes as they are (no colon: OpenMetrics'
# sample lines escape it).
_PLAIN_NAME = re.compile(r'[a-zA-Z_][a-zA-Z0-9_]*\Z')
# Escapings under which a legacy name is written as it is.
_PLAIN_ESCAPINGS = (om_exposition.UNDERSCORES, om_exposition.ALLOWUTF8)
# Sample names that the text format moves out of their family.
_OM_ONLY = ('_created', '_gsum', '_gcount')
# Family types renamed in the text format (the library's munging).
_TEXT_TYPES = {'info': 'gauge', 'stateset': 'gauge',
               'gaugehistogram': 'histogram', 'unknown': 'untyped'}
_TEXT_SUFFIX = {'counter': '_total', 'info': '_info'}
# A sample's fields after name, labels and value, all None.
_NO_MORE = (None,) * 8


class _NotCovered(Exception):
    """Something only prometheus_client's encoder writes right."""


def _label_value(value: str) -> str:
    return value.replace('\\', r'\\').replace('\n', r'\n').replace(
        '"', r'\"')


def _labels(labels: dict) -> str:
    if not labels:
        return ''
    parts = []
    for name, value in sorted(labels.items()):
        if not _PLAIN_NAME.match(name):
            raise _NotCovered()
        parts.append(f'{name}="{_label_value(value)}"')
    return '{' + ','.join(parts) + '}'


# Below 2**53 an integer is exactly a float, whose repr is its digits and
# '.0' (Python writes exponents from 1e16 on).
_EXACT = 2 ** 53


def go_float(value) -> str:
    """prometheus_client's floatToGoString, the same text, without its
    float() and repr() for the integers most samples are (bytes, counts,
    0 and 1): a third of the encode's time at 4,096 guests.
    """
    if type(value) is int and 0 <= value < _EXACT:
        digits = str(value)
        if len(digits) <= 6:
            return digits + '.0'
        # Go's exponent form past six digits, as the library writes it
        mantissa = f'{digits[0]}.{digits[1:]}0'.rstrip('0.')
        return f'{mantissa}e+{len(digits) - 1:02d}'
    return prom_utils.floatToGoString(value)


def _label_text(labels: dict, written: dict, texts: dict) -> str:
    """The written form of ``labels``: from this body's ``written`` or the
    previous body's ``texts`` (both id(labels) -> (labels, text); the
    labels kept alive there, so an id is never another dict's), else made;
    ``written`` gets it.
    """
    key = id(labels)
    found = written.get(key)
    if found is None:
        found = texts.get(key)
        if found is None or found[0] is not labels:
            found = (labels, _labels(labels))
        written[key] = found
    return found[1]


def _check_name(family, name: str, openmetrics: bool) -> None:
    if not _PLAIN_NAME.match(name) or (
            not openmetrics and name.startswith(family.name) and
            name[len(family.name):] in _OM_ONLY):
        raise _NotCovered()


def _columns(family, out: list, openmetrics: bool, written: dict,
             texts: dict) -> None:
    """Append the lines of a family kept as columns (metrics.GuestFamily:
    one sample name, label sets, values that are numbers).
    """
    name, label_sets, values = family.columns()
    _check_name(family, name, openmetrics)
    get = written.get
    for labels, value in zip(label_sets, values):
        found = get(id(labels))
        text = found[1] if found is not None else _label_text(
            labels, written, texts)
        out.append(f'{name}{text} {go_float(value)}\n')


def _samples(family, out: list, openmetrics: bool, written: dict,
             texts: dict) -> None:
    """Append each sample's line."""
    checked = set()
    for sample in family.samples:
        name, labels, value = sample[0], sample[1], sample[2]
        if value is None or sample[3:] != _NO_MORE[:len(sample) - 3]:
            raise _NotCovered()  # timestamp, exemplar, native histogram
        if name not in checked:
            _check_name(family, name, openmetrics)
            checked.add(name)
        out.append(f'{name}{_label_text(labels, written, texts)} '
                   f'{go_float(value)}\n')


def _encode(families, openmetrics: bool, texts: dict) -> bytes:
    """The body; ``texts`` (the label sets written by the previous body)
    then holds this body's.
    """
    out, written = [], {}
    for family in families:
        if family.unit or not _PLAIN_NAME.match(family.name):
            raise _NotCovered()
        kind = family.type
        name = family.name
        if openmetrics:  # HELP escaped as a label value is
            doc = _label_value(family.documentation)
        else:
            doc = family.documentation.replace('\\', r'\\').replace(
                '\n', r'\n')
            name += _TEXT_SUFFIX.get(kind, '')
            kind = _TEXT_TYPES.get(kind, kind)
        out.append(f'# HELP {name} {doc}\n# TYPE {name} {kind}\n')
        if hasattr(family, 'columns'):
            _columns(family, out, openmetrics, written, texts)
        else:
            _samples(family, out, openmetrics, written, texts)
    if openmetrics:
        out.append('# EOF\n')
    # an encode in another thread that finds it emptied meanwhile writes
    # its label sets anew: the same text
    texts.clear()
    texts.update(written)
    return ''.join(out).encode('utf-8')


class Families:
    """A registry that gives families already collected (one poll's),
    for the encoders.
    """

    def __init__(self, families):
        self._families = families

    def collect(self):
        return self._families


def _fast_format(content_type: str) -> bool | None:
    """True for OpenMetrics 1.0.0, False for the text format 0.0.4 or
    1.0.0, each with an escaping that writes legacy names as they are;
    None for anything else (the library writes it).
    """
    media, *params = (part.strip() for part in content_type.split(';'))
    params = dict(p.split('=', 1) for p in params if '=' in p)
    if params.get('escaping', om_exposition.UNDERSCORES) not in (
            _PLAIN_ESCAPINGS):
        return None
    version = params.get('version')
    if media == 'application/openmetrics-text' and version == '1.0.0':
        return True
    if media == 'text/plain' and version in ('0.0.4', '1.0.0'):
        return False
    return None


def wanted(families: list, names) -> list:
    """The families ``names`` (prometheus_client's ``name[]``) asks for,
    by family or sample name (``x``, or ``x_total`` of a counter even
    without samples).
    """
    names = set(names)
    return [f for f in families if f.name in names or
            f.type == 'counter' and f.name + '_total' in names or
            not names.isdisjoint(_sample_names(f))]


def _sample_names(family) -> set:
    if hasattr(family, 'columns'):
        return {family.columns()[0]}
    return {s.name for s in family.samples}


@dataclasses.dataclass(frozen=True)
class Format:
    """What a client asked for: a content type (and the library's encoder
    of it), compressed with gzip or not. Equal formats give equal bodies.
    """

    content_type: str
    zipped: bool = False
    library: typing.Callable = dataclasses.field(
        default=exposition.generate_latest, compare=False, repr=False)


def gzip_wanted(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header takes gzip: listed (or ``*``)
    with a q-value above 0.
    """
    found = {}
    for part in accept_encoding.split(','):
        name, *params = (p.strip() for p in part.split(';'))
        q = 1.0
        for param in params:
            key, _, value = param.partition('=')
            if key.strip().lower() == 'q':
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if name:
            found[name.lower()] = q
    q = found.get('gzip', found.get('x-gzip', found.get('*', 0.0)))
    return q > 0


_OPENMETRICS = 'application/openmetrics-text'
_ESCAPINGS = (om_exposition.UNDERSCORES, om_exposition.ALLOWUTF8,
              om_exposition.DOTS, om_exposition.VALUES)


def _version(value: str | None) -> tuple | None:
    """A version parameter as numbers (``1.0.0`` is (1, 0, 0)); None when
    absent or not numbers (``x``, ``1.a``).
    """
    if not value:
        return None
    try:
        return tuple(int(part) for part in value.split('.'))
    except ValueError:
        return None


def _media_ranges(accept: str):
    """(media type, {parameter: value}) of each of an Accept header's media
    ranges, in its order.
    """
    for part in accept.split(','):
        media, *params = (p.strip() for p in part.split(';'))
        values = {}
        for param in params:
            key, sep, value = param.partition('=')
            if sep:
                values.setdefault(key.strip(), value.strip())
        yield media, values


def negotiate(accept: str, accept_encoding: str = '') -> Format:
    """The Format of a request's Accept and Accept-Encoding headers: the
    first media range prometheus_client serves, as its ``choose_encoder``
    takes them in order (OpenMetrics 1.0.0 or 2.0.0, or the text format
    1.0.0, with an escaping), else the text format 0.0.4. A version that
    is not numbers skips its range, as Go's client_golang does, and never
    fails the request; any spelling comes to one of these few Formats
    (``1.0.0.7`` is 1.0.0), so the bodies made for them can be shared.
    """
    for media, params in _media_ranges(accept):
        escaping = params.get('escaping', om_exposition.UNDERSCORES)
        if escaping not in _ESCAPINGS:
            escaping = om_exposition.UNDERSCORES
        version = params.get('version')
        number = _version(version)
        if media == _OPENMETRICS:
            if not version:
                return Format(om_exposition.CONTENT_TYPE_LATEST,
                              gzip_wanted(accept_encoding),
                              functools.partial(
                                  om_exposition.generate_latest,
                                  escaping=om_exposition.UNDERSCORES,
                                  version='1.0.0'))
            if number is not None and number >= (1, 0, 0):
                version = '2.0.0' if number >= (2,) else '1.0.0'
                return Format(
                    f'{_OPENMETRICS}; version={version}; charset=utf-8; '
                    f'escaping={escaping}', gzip_wanted(accept_encoding),
                    functools.partial(om_exposition.generate_latest,
                                      escaping=escaping, version=version))
        elif media == 'text/plain' and number is not None and \
                number >= (1, 0, 0):
            return Format(
                f'{exposition.CONTENT_TYPE_LATEST}; escaping={escaping}',
                gzip_wanted(accept_encoding),
                functools.partial(exposition.generate_latest,
                                  escaping=escaping))
    return Format(exposition.CONTENT_TYPE_PLAIN_0_0_4,
                  gzip_wanted(accept_encoding), exposition.generate_latest)


def encode(families: list, fmt: Format, names=(),
           texts: dict | None = None) -> bytes:
    """The body of ``families``: those ``names`` asks for (all without
    it), in ``fmt``. ``texts``, a dict owned by the caller and passed at
    every encode, keeps the label sets written for the next one: a
    guest's label sets that outlive a scrape (metrics.families' ``kept``)
    are then written once, not at every scrape.
    """
    if names:
        families = wanted(families, names)
    openmetrics = _fast_format(fmt.content_type)
    body = None
    if openmetrics is not None:
        try:
            body = _encode(families, openmetrics,
                           texts if texts is not None else {})
        except _NotCovered:
            pass
    if body is None:
        body = fmt.library(Families(families))
    # level 1: at 20 guests 0.13 ms for 2.9 KB, level 9 0.66 ms for 2.4 KB
    return gzip.compress(body, compresslevel=1) if fmt.zipped else body
