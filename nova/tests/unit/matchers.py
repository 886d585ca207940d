"""A testtools matcher that compares XML documents semantically.

Attribute order, whitespace-only text and comments do not matter; element
order does. A mismatch names the path of the first difference.
"""

from lxml import etree
import testtools.matchers


def _parse(xml):
    if isinstance(xml, str):
        parser = etree.XMLParser(remove_comments=True, remove_pis=True,
                                 remove_blank_text=True,
                                 resolve_entities=False, no_network=True)
        return etree.fromstring(xml.encode(), parser)
    return xml


def _text(value):
    value = (value or '').strip()
    return value or None


def _children(el):
    return [c for c in el if isinstance(c.tag, str)]


def first_difference(expected, actual, path=''):
    """A description of the first difference, or None when equal."""
    path = f'{path}/{expected.tag}'
    siblings = expected.getparent()
    if siblings is not None and len(siblings.findall(expected.tag)) > 1:
        path += f'[{siblings.findall(expected.tag).index(expected) + 1}]'
    if expected.tag != actual.tag:
        return f'{path}: expected element <{expected.tag}>, ' \
               f'got <{actual.tag}>'
    if dict(expected.attrib) != dict(actual.attrib):
        for name in sorted(set(expected.attrib) | set(actual.attrib)):
            want, got = expected.get(name), actual.get(name)
            if want != got:
                return f'{path}/@{name}: expected {want!r}, got {got!r}'
    if _text(expected.text) != _text(actual.text):
        return (f'{path}/text(): expected {_text(expected.text)!r}, '
                f'got {_text(actual.text)!r}')
    want, got = _children(expected), _children(actual)
    for w, g in zip(want, got):
        diff = first_difference(w, g, path)
        if diff:
            return diff
    if len(want) != len(got):
        extra = got[len(want):] or want[len(got):]
        which = 'unexpected' if len(got) > len(want) else 'missing'
        return f'{path}: {which} child <{extra[0].tag}>'
    return None


class XMLMismatch(testtools.matchers.Mismatch):
    def __init__(self, description, actual):
        self.description, self.actual = description, actual

    def describe(self):
        return f'{self.description}\nactual XML:\n{self.actual}'


class XMLMatches:
    """Matches XML (a string or an element) equal to ``expected``."""

    def __init__(self, expected):
        self.expected = _parse(expected)

    def __str__(self):
        return 'XMLMatches(%s)' % etree.tostring(self.expected,
                                                 encoding='unicode')

    def match(self, actual):
        actual_el = _parse(actual)
        diff = first_difference(self.expected, actual_el)
        if diff is None:
            return None
        return XMLMismatch(diff, etree.tostring(
            actual_el, encoding='unicode', pretty_print=True))
