"""Typed YAML, read with bounds: the reading half of a configuration file.

A file is read only if it is a regular file of at most ``MAX_BYTES`` (a
FIFO or device is never opened for reading, so it cannot block), parsed as
one YAML document whose aliases may not expand to more than ``MAX_NODES``
nodes, and its values taken by kind (``STR``: any single value, as its text,
as yaml.v2 reads a string; ``BOOL``, ``INT``, ``DURATION``, ``STR_LIST``,
``STR_MAP``). A key the schema does not have, a repeated key or a value of
another kind is refused in one line naming the line, never the content.
What the keys mean is nova.exporter.web.config's; nothing here knows them.
"""

import difflib
import hashlib
import os
import re

import yaml

from nova import readfile

#: Bytes a file, or a file it names, may hold.
MAX_BYTES = 1024 * 1024
#: YAML nodes a file may hold once its aliases are expanded (a "billion
#: laughs" file of 600 bytes expands to millions).
MAX_NODES = 10_000
_DURATION = re.compile(r'(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)')
_UNITS = {'ns': 1e-9, 'us': 1e-6, 'µs': 1e-6, 'ms': 1e-3, 's': 1.0,
          'm': 60.0, 'h': 3600.0}

STR, BOOL, INT, DURATION, STR_LIST, STR_MAP = (
    'a string', 'true or false', 'a whole number', 'a duration such as 1s',
    'a list of strings', 'a mapping of strings')

def identity(path: str) -> tuple:
    """What tells whether ``path`` changed without reading it (device,
    inode, size, modification and change times), or its errno.
    """
    try:
        st = os.stat(path)
    except OSError as e:
        return (path, e.errno)
    return (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns,
            st.st_ctime_ns)


def read_bounded(path: str) -> bytes:
    """The bytes of the regular file ``path``, at most MAX_BYTES
    (nova.readfile); OSError (with a strerror that says why) otherwise. A
    FIFO or device is never opened for reading, so it cannot block.
    """
    try:
        return readfile.read(path, MAX_BYTES)
    except readfile.Refused as e:
        raise OSError(0, f'larger than {MAX_BYTES // 1024} KiB'
                      if e.what == 'too-large' else
                      'not a regular file') from None


def _error_line(error, raw: bytes) -> int | None:
    """The line (from 1) a YAML error is on, as the operator counts: the
    start of what was left open (a quoted string) where PyYAML names it,
    and never past the file's last line (PyYAML marks an unclosed ``[``
    at the end of the stream, the line after it).
    """
    marks = [m for m in (getattr(error, 'context_mark', None),
                         getattr(error, 'problem_mark', None))
             if m is not None]
    if not marks:
        return None
    last = max(1, len(raw.rstrip().split(b'\n')))
    return min(marks[0].line + 1, last)


class Reader:
    """Reads one YAML file against a schema of kinds, raising ``error``
    (a NovaException taking ``path`` and ``reason``) in one line that
    names a line and the schema's keys, never the file's content.
    """

    def __init__(self, path: str, error):
        self.path = path
        self.error = error
        self.directory = os.path.dirname(os.path.abspath(path))
        self.digest = hashlib.sha256()
        self.files = [identity(path)]
        self._loader = None

    def fail(self, reason: str, node=None):
        line = f'line {node.start_mark.line + 1}: ' if node is not None \
            else ''
        raise self.error(path=self.path, reason=line + reason)

    # -- YAML, bounded

    def document(self, raw: bytes):
        """The file's one YAML document as a node graph (None: empty),
        refusing more than MAX_NODES nodes once aliases expand.
        """
        loader = yaml.SafeLoader(raw)
        self._loader = loader
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as e:
            line = _error_line(e, raw)
            line = f' (line {line})' if line is not None else ''
            self.fail(f'is not valid YAML{line}: fix the file.')
        if node is not None:
            self._count(node)
        return node

    def _count(self, root) -> None:
        budget = MAX_NODES
        stack, path = [(root, False)], set()
        while stack:
            node, leaving = stack.pop()
            if leaving:
                path.discard(id(node))
                continue
            budget -= 1
            if budget < 0:
                self.fail(f'has more than {MAX_NODES} YAML nodes once its '
                          'aliases are expanded: write it without '
                          'anchors and aliases.')
            if id(node) in path:
                self.fail('holds a YAML alias that contains itself: '
                          'remove it.', node)
            if isinstance(node, yaml.ScalarNode):
                continue
            path.add(id(node))
            stack.append((node, True))
            if isinstance(node, yaml.MappingNode):
                for key, value in node.value:
                    stack.extend(((value, False), (key, False)))
            else:
                stack.extend((child, False) for child in node.value)

    def scalar(self, node):
        return self._loader.construct_object(node, deep=True)

    # -- typed values

    def mapping(self, node, where: str, known: dict | None) -> dict:
        """{key: value node} of a mapping node (None: empty), refusing
        keys ``known`` does not have (any key when None... of strings)
        and repeated keys, as UnmarshalStrict does.
        """
        if node is None or self.null(node):
            return {}
        if not isinstance(node, yaml.MappingNode):
            self.fail(f'{where or "the file"} must be a mapping '
                      f'({"key: value" if where else "settings"}), not '
                      f'{kind_of(node)}.', node)
        found = {}
        for key_node, value in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or \
                    self.null(key_node):
                self.fail(f'a key {"under " + where if where else ""} is '
                          'not a plain string: fix it.'.replace('  ', ' '),
                          key_node)
            key = key_node.value
            if known is not None and key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f'did you mean {close[0]}? ' if close else ''
                self.fail(f'a key {"under " + where + " " if where else ""}'
                          'is not a setting of the exporter toolkit\'s web '
                          f'configuration: {hint}remove it or fix it '
                          f'(known: {", ".join(sorted(known))}).', key_node)
            if key in found:
                shown = key if known is not None else 'a key'
                self.fail(f'{where + "." if where else ""}{shown} is set '
                          'twice: keep one.', key_node)
            found[key] = value
        return found

    def value(self, node, kind: str, where: str):
        """The Python value of ``node`` for ``kind``, or None when null."""
        if node is None or self.null(node):
            return None
        if kind == STR:
            if not isinstance(node, yaml.ScalarNode):
                self.fail(f'{where} must be {kind}, not {kind_of(node)}.',
                          node)
            return node.value  # any scalar, as its text (yaml.v2)
        if kind == STR_LIST:
            if not isinstance(node, yaml.SequenceNode):
                self.fail(f'{where} must be {kind}, not {kind_of(node)}.',
                          node)
            return [self.value(item, STR, f'{where} item {i + 1}') or ''
                    for i, item in enumerate(node.value)]
        if kind == STR_MAP:
            return {key: self.value(value, STR, where) or ''
                    for key, value in self.mapping(node, where,
                                                   None).items()}
        if not isinstance(node, yaml.ScalarNode):
            self.fail(f'{where} must be {kind}, not {kind_of(node)}.', node)
        value = self.scalar(node)
        if kind == BOOL and isinstance(value, bool):
            return value
        if kind == INT and isinstance(value, int) and \
                not isinstance(value, bool):
            return value
        if kind == DURATION:
            seconds = duration(value)
            if seconds is not None:
                return seconds
        self.fail(f'{where} must be {kind}.', node)

    @staticmethod
    def null(node) -> bool:
        return isinstance(node, yaml.ScalarNode) and \
            node.tag == 'tag:yaml.org,2002:null'

    # -- files it names

    def file(self, value: str, where: str, node) -> bytes:
        path = os.path.join(self.directory, value)
        self.files.append(identity(path))
        try:
            data = read_bounded(path)
        except OSError as e:
            self.fail(f'{where} {path} cannot be read: {e.strerror}: check '
                      'the path and its permissions.', node)
        self.digest.update(hashlib.sha256(data).digest())
        return data


def kind_of(node) -> str:
    if isinstance(node, yaml.MappingNode):
        return 'a mapping'
    if isinstance(node, yaml.SequenceNode):
        return 'a list'
    return 'a single value'


def duration(value) -> float | None:
    """Seconds of a Go duration ("1s", "1m30s", "500ms", "0"), or of an
    integer of nanoseconds, as yaml.v2 reads a time.Duration; else None.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return float(value) * 1e-9
    if not isinstance(value, str):
        return None
    if value in ('0', ''):
        return 0.0
    pos, total = 0, 0.0
    for m in _DURATION.finditer(value):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return total if pos == len(value) and pos else None


# -- the settings -----------------------------------------------------------
