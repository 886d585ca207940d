"""Libvirt domain XML as Python objects: build and parse, one description.

Every class maps one libvirt element and declares each XML fact once, as
a field descriptor bound to a path under that element. From those
declarations, once per class, come both the writing of XML (``format_dom``)
and the reading of it (``parse_dom``), so the two can never drift apart:
each class computes a layout of element paths once, and one loop walks it
both ways.

Values are Python values inside (``int`` period, ``bool`` autodeflate);
libvirt's spellings exist only at the XML boundary. ``None`` means absent.

This module must not read nova.conf, import libvirt or decide policy: a
class writes exactly what it was given.
"""

import typing

from lxml import etree

from nova import exception
from nova import utils

# libvirt stores these figures as a C int.
INT_MAX = 2147483647

# Parser for XML we did not write: no entities, no network, no huge trees.
# Nothing here reads the blanks between elements (libvirt's indentation)
# or xml:id attributes; dropping them makes parsing 15 % faster.
_SAFE_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, remove_comments=True,
    remove_pis=True, huge_tree=False, remove_blank_text=True,
    collect_ids=False)


# Largest XML we parse. A domain's XML is a few KiB; parsing 50 MB of small
# elements took 5.7 s and about 2 GB, and the collector reads XML of guests
# it did not create.
MAX_XML_BYTES = 2 * 1024 * 1024


class XMLSyntaxError(exception.LibvirtConfigParseError,
                     etree.XMLSyntaxError):
    """Malformed XML: one of ours (one line, naming what was expected)
    and lxml's own, which code written for Nova catches.
    """

    msg_fmt = 'Cannot parse %(where)s: it is not well-formed (%(reason)s).'

    def __init__(self, **kwargs):
        exception.LibvirtConfigParseError.__init__(self, **kwargs)
        # lxml's SyntaxError prints its ``msg``: ours, one line
        self.msg = self.args[0]

    def __str__(self) -> str:
        return self.args[0]


def parse_xml(xmlstr: str | bytes):
    """The root element of ``xmlstr``, read with the hardened parser."""
    if len(xmlstr) > MAX_XML_BYTES:
        raise exception.LibvirtConfigParseError(
            where='XML', value=f'{len(xmlstr)} characters of XML',
            expected=f'at most {MAX_XML_BYTES}, the most nova-libvirt '
                     'parses')
    try:
        root = etree.fromstring(xmlstr, _SAFE_PARSER)
    except etree.XMLSyntaxError as e:
        # lxml's sentence as it is, not quoted
        raise XMLSyntaxError(where='XML', reason=str(e)) from None
    except ValueError as e:  # e.g. a str with an encoding declaration
        raise exception.LibvirtConfigParseError(
            where='XML', value=str(e), expected='XML lxml can read') from None
    if root.getroottree().docinfo.doctype:
        # libvirt writes no DTD; entities from one are never resolved here
        # (a modelled element holding one would silently read as absent).
        raise exception.LibvirtConfigParseError(
            where='XML', value=root.getroottree().docinfo.doctype,
            expected='XML without a DOCTYPE (libvirt writes none)')
    return root


# ---------------------------------------------------------------- kinds

def _lookup(table: dict):
    """A from_xml that finds its text in ``table``, or raises ValueError
    (a KeyError would look like a bug).
    """
    def from_xml(text: str):
        try:
            return table[text]
        except KeyError:
            raise ValueError(text) from None
    return from_xml


class Kind:
    """How one field's value converts between Python and libvirt text."""

    #: What the field accepts, for error messages ("an integer from 1 to 5")
    description = 'a value'

    def accepts(self, value) -> bool:
        raise NotImplementedError

    def to_xml(self, value) -> str:
        return str(value)

    def from_xml(self, text: str):
        """Return the Python value for ``text``, or raise ValueError."""
        if not self.accepts(text):
            raise ValueError(text)
        return text


class String(Kind):
    """Characters XML can carry; non-empty unless ``empty`` (Nova writes
    ``<nova:image uuid="">`` for an instance with no image).
    """

    def __init__(self, empty: bool = False):
        self.empty = empty
        self.description = ('a string of characters XML can carry' if empty
                            else 'a non-empty string of characters XML '
                                 'can carry')

    def accepts(self, value) -> bool:
        return (isinstance(value, str) and (self.empty or value != '') and
                utils.xml_problem(value) is None)

    def from_xml(self, text: str) -> str:
        # Parsed XML holds only characters XML can carry.
        if not text and not self.empty:
            raise ValueError(text)
        return text


class Integer(Kind):
    """A bounded integer written in decimal."""

    def __init__(self, min: int | None = None, max: int | None = None):
        self.min, self.max = min, max
        if min is not None and max is not None:
            self.description = f'an integer from {min} to {max}'
        elif min is not None:
            self.description = f'an integer of at least {min}'
        elif max is not None:
            self.description = f'an integer of at most {max}'
        else:
            self.description = 'an integer'

    def accepts(self, value) -> bool:
        if not isinstance(value, int) or isinstance(value, bool):
            return False
        return ((self.min is None or value >= self.min) and
                (self.max is None or value <= self.max))

    def from_xml(self, text: str) -> int:
        if text.isascii() and text.isdigit():  # what libvirt writes
            value = int(text)
        else:  # surrounding blanks, a sign; never "1_000" or "+1"
            stripped = text.strip()
            if not (stripped.isascii() and
                    stripped.lstrip('-').isdigit()):
                raise ValueError(text)
            value = int(stripped)
        if ((self.min is not None and value < self.min) or
                (self.max is not None and value > self.max)):
            raise ValueError(text)
        return value


class Enum(Kind):
    """One of a fixed set of libvirt strings."""

    def __init__(self, *choices: str):
        self.choices = choices
        self.description = 'one of ' + ', '.join(repr(c) for c in choices)
        self.from_xml = _lookup({c: c for c in choices})

    def accepts(self, value) -> bool:
        return value in self.choices


class Switch(Kind):
    """A bool that libvirt spells as a pair of words (on/off, yes/no)."""

    def __init__(self, true: str, false: str):
        self.words = {True: true, False: false}
        self.description = f'True or False (written {true!r}/{false!r})'
        self.to_xml = self.words.__getitem__
        self.from_xml = _lookup({true: True, false: False})

    def accepts(self, value) -> bool:
        return isinstance(value, bool)


def OnOff() -> Switch:
    return Switch('on', 'off')


# --------------------------------------------------------------- fields

def _qualify(tag: str, namespace: str | None) -> str:
    return f'{{{namespace}}}{tag}' if namespace else tag


def _tags(path: str | None, namespace: str | None) -> tuple[str, ...]:
    """The (qualified) element names along ``path``, computed once."""
    return tuple(_qualify(t, namespace) for t in path.split('/')) \
        if path else ()


class Field:
    """A declared XML fact of a LibvirtConfigObject subclass.

    A field names the element it lives on by a path under its object's
    element. The class's layout (see ``_Layout``) hands each field that
    element, already found or created: ``read`` gets the element when the
    XML has it, ``write`` gets it when the field has a value to write.

    Values live in the object's ``__dict__`` under the field's name, and
    the class holds the empty value there (see ``class_attribute``), so
    reading a field is a plain attribute read; the object's
    ``__setattr__`` checks each value set.
    """

    #: The value of a field nobody set.
    empty = None
    #: Whether a falsy value is absent too (an unset flag, no children),
    #: so that format creates no element for it.
    skip_falsy = False

    def __init__(self, kind: Kind | None = None, path: str | None = None,
                 default=None):
        self.kind, self.path = kind, path
        #: What a new object holds until told otherwise (never applied by
        #: a parse: what the XML lacks is absent).
        self.default = default
        if kind is not None:  # bound once: a parse calls them per value
            self.from_xml, self.to_xml = kind.from_xml, kind.to_xml

    def __set_name__(self, owner, name):
        self.name = name
        own = owner.__dict__.get('_own_fields', ())
        owner._own_fields = own + (self,)
        # Sub-elements live in the owner's namespace, if it has one.
        self.tags = _tags(self.path, owner.namespace)

    @property
    def read_tags(self) -> tuple[str, ...]:
        """The element ``read`` is given, as a path of tags."""
        return self.tags

    def class_attribute(self):
        """What the class holds under the field's name: what an object
        that has no value of its own reads.
        """
        return self.empty

    def check(self, obj, value):
        if value is None or self.kind.accepts(value):
            return value
        raise exception.InvalidLibvirtConfigValue(
            cls=type(obj).__name__, field=self.name, value=value,
            expected=self.kind.description + ' or None')

    def where(self, el) -> str:
        return f'<{el.tag}>'

    def convert(self, el, raw: str):
        """The Python value of ``raw``, read from ``el``."""
        try:
            return self.from_xml(raw)
        except ValueError:
            raise exception.LibvirtConfigParseError(
                where=self.where(el), value=raw,
                expected=self.kind.description) from None

    def write(self, el, value) -> None:
        """Write ``value`` (not None) onto ``el``, this field's element."""
        raise NotImplementedError

    def read(self, values: dict, el) -> None:
        """Put the value ``el`` holds, if any, into ``values``."""
        raise NotImplementedError

class Attribute(Field):
    """An attribute of the object's element or of a sub-element at path."""

    def __init__(self, xml_name: str, kind: Kind, path: str | None = None,
                 default=None):
        super().__init__(kind, path, default)
        self.xml_name = xml_name

    def where(self, el) -> str:
        return f'<{el.tag}> attribute {self.xml_name!r}'

    def write(self, el, value):
        el.set(self.xml_name, self.to_xml(value))

    def read(self, values, el):
        raw = el.get(self.xml_name)
        if raw is not None:
            values[self.name] = self.convert(el, raw)


class Text(Field):
    """The text of a sub-element, with attributes libvirt fixes (unit)."""

    def __init__(self, path: str, kind: Kind,
                 fixed: dict[str, str] | None = None):
        super().__init__(kind, path)
        self.fixed = tuple((fixed or {}).items())

    def write(self, el, value):
        el.text = self.to_xml(value)
        for name, fixed_value in self.fixed:
            el.set(name, fixed_value)

    def read(self, values, el):
        for name, fixed_value in self.fixed:
            raw = el.get(name)
            if raw is not None and raw != fixed_value:
                raise exception.LibvirtConfigParseError(
                    where=f'<{el.tag}> attribute {name!r}', value=raw,
                    expected=repr(fixed_value))
        # No text at all is absent: the element may exist for attributes
        # other fields declare (<nova:user uuid="..."/>).
        text = el.text
        if text is not None:
            values[self.name] = self.convert(el, text)


class Flag(Field):
    """An empty element whose presence means True (``<acpi/>``)."""

    empty = False
    skip_falsy = True

    def __init__(self, path: str):
        super().__init__(None, path)

    def check(self, obj, value):
        if isinstance(value, bool):
            return value
        raise exception.InvalidLibvirtConfigValue(
            cls=type(obj).__name__, field=self.name, value=value,
            expected='True or False')

    def write(self, el, value):
        pass  # being there is all it says

    def read(self, values, el):
        values[self.name] = True


def _write_child(parent, item) -> None:
    """Format ``item`` straight into a new sub-element of ``parent``.

    Built in place rather than formatted alone and appended: moving a
    finished tree into another document costs lxml a walk over it.
    """
    cls = type(item)
    item._write(etree.SubElement(parent, cls._qname, None, cls._nsmap))


class Children(Field):
    """A list of child objects under path, picked by their element name."""

    skip_falsy = True

    def __init__(self, path: str, base: type):
        super().__init__(None, path)
        self.base = base

    def class_attribute(self):
        return self  # a list of the object's own, made when first read

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        items = obj.__dict__.get(self.name)
        if items is None:
            items = obj.__dict__[self.name] = _Items(self, type(obj))
        return items

    def check(self, obj, value):
        if isinstance(value, list) and all(
                isinstance(item, self.base) for item in value):
            return _Items(self, type(obj), value)
        raise exception.InvalidLibvirtConfigValue(
            cls=type(obj).__name__, field=self.name, value=value,
            expected=f'a list of {self.base.__name__}')

    def write(self, el, items):
        for item in items:
            _write_child(el, item)

    def read(self, values, el):
        items = []
        by_tag = self.base.subclasses_by_tag()
        for child in el[:]:
            found = by_tag.get(child.tag)
            if found is not None:  # unmodelled devices are ignored
                item = found[0].__new__(found[0])
                found[1](item.__dict__, child)
                items.append(item)
        values[self.name] = _Items(self, None, items)


class _Items(list):
    """A Children field's list: what is added to it is checked, as what
    is assigned is (``guest.devices.append(balloon)``).
    """

    __slots__ = ('_field', '_owner')

    def __init__(self, field: 'Children', owner, items=()):
        super().__init__(items)
        self._field, self._owner = field, owner

    def _check(self, item):
        if not isinstance(item, self._field.base):
            owner = self._owner.__name__ if self._owner else 'the object'
            raise exception.InvalidLibvirtConfigValue(
                cls=owner, field=self._field.name, value=item,
                expected=f'a {self._field.base.__name__}')
        return item

    def append(self, item):
        super().append(self._check(item))

    def insert(self, index, item):
        super().insert(index, self._check(item))

    def extend(self, items):
        super().extend([self._check(item) for item in items])

    def __iadd__(self, items):
        self.extend(items)
        return self

    def __setitem__(self, index, value):
        if isinstance(index, slice):
            value = [self._check(item) for item in value]
        else:
            value = self._check(value)
        super().__setitem__(index, value)


class NamedValues(Field):
    """A {name: value} map, one sub-element per entry under path, its name
    in an attribute: Nova's ``<nova:extraSpecs>`` and ``<nova:properties>``
    (``<nova:extraSpec name="hw:cpu_policy">dedicated</nova:extraSpec>``).

    Values are written as ``str(value)``, as Nova writes them (an image
    property 5 as "5", True as "True"), and read back as strings. An empty
    map writes the element at path alone, as Nova does; None writes
    nothing.
    """

    def __init__(self, path: str, item: str, key: str = 'name'):
        super().__init__(None, path)
        self.item, self.key = item, key

    def __set_name__(self, owner, name):
        super().__set_name__(owner, name)
        self.item_tag = _qualify(self.item, owner.namespace)

    @staticmethod
    def _fits(value) -> bool:
        return (not isinstance(value, (dict, list, tuple, set)) and
                value is not None and utils.xml_problem(str(value)) is None)

    def check(self, obj, value):
        if value is None:
            return None
        if isinstance(value, dict) and all(
                isinstance(k, str) and k and utils.xml_problem(k) is None
                and self._fits(v) for k, v in value.items()):
            return dict(value)
        raise exception.InvalidLibvirtConfigValue(
            cls=type(obj).__name__, field=self.name, value=value,
            expected='a dict of names to values (strings, numbers or '
                     'booleans) XML can carry, or None')

    def write(self, el, value):
        for name, item in value.items():
            child = etree.SubElement(el, self.item_tag)
            child.set(self.key, name)
            child.text = str(item)

    def read(self, values, el):
        found = {}
        for child in el:
            if child.tag != self.item_tag:
                continue
            name = child.get(self.key)
            if not name:
                raise exception.LibvirtConfigParseError(
                    where=f'<{child.tag}>', value='no ' + self.key,
                    expected=f'a non-empty attribute {self.key!r}')
            found[name] = child.text or ''
        values[self.name] = found


class Child(Field):
    """One optional child object (its element under path), or None."""

    def __init__(self, cls: type, path: str | None = None):
        super().__init__(None, path)
        self.cls = cls

    def __set_name__(self, owner, name):
        super().__set_name__(owner, name)
        # A parse hands over the child's own element; a format, its parent.
        self.element = self.tags + (self.cls._qname,)

    @property
    def read_tags(self):
        return self.element

    def check(self, obj, value):
        if value is None or isinstance(value, self.cls):
            return value
        raise exception.InvalidLibvirtConfigValue(
            cls=type(obj).__name__, field=self.name, value=value,
            expected=f'a {self.cls.__name__} or None')

    def write(self, el, value):
        _write_child(el, value)

    def read(self, values, el):
        item = self.cls.__new__(self.cls)
        self.cls._layout.read(item.__dict__, el)
        values[self.name] = item


# -------------------------------------------------------------- objects

class _Layout:
    """How one class's fields map onto its XML, computed once per class.

    For format: node 0 is the object's own element; every other node is
    an element path some field names, numbered in declaration order, the
    order a format creates them in. A node is created when the first field
    with a value needs it, and each field is handed its element.

    For parse: a tree of the element paths the fields read, each node the
    fields reading its element and its child tags; ``read`` walks it,
    down only those paths, handing each field its element (the first
    element of a path wins, as ``find`` would).
    """

    __slots__ = ('size', 'tags', 'parents', 'writes', 'plan', 'defaults')

    def __init__(self, fields: tuple[Field, ...]):
        numbers = {(): 0}
        self.tags, self.parents = [None], [0]

        def node(path):
            found = numbers.get(path)
            if found is None:
                parent = node(path[:-1])
                found = numbers[path] = len(self.tags)
                self.tags.append(path[-1])
                self.parents.append(parent)
            return found

        #: (name, node, skip_falsy, write) per field, in order.
        self.writes = tuple((f.name, node(f.tags), f.skip_falsy, f.write)
                            for f in fields)
        self.size = len(self.tags)
        #: (field reads at this element, {child tag: plan}), as a tree.
        self.plan = ([], {})
        for field in fields:
            here = self.plan
            for tag in field.read_tags:
                here = here[1].setdefault(tag, ([], {}))
            here[0].append(field.read)
        #: {field: default} that a new object starts with.
        self.defaults = {f.name: f.default for f in fields
                         if f.default is not None}

    def read(self, values: dict, el) -> None:
        """Put the values ``el`` holds into ``values``."""
        _walk(self.plan, values, el)

    def ensure(self, els: list, number: int):
        """Node ``number``'s element, created where missing (format)."""
        parent = els[self.parents[number]]
        if parent is None:
            parent = self.ensure(els, self.parents[number])
        el = els[number] = etree.SubElement(parent, self.tags[number])
        return el


def _walk(plan, values: dict, el) -> None:
    reads, below = plan
    for read in reads:
        read(values, el)
    if below:
        seen = set()
        for child in el:
            tag = child.tag
            sub = below.get(tag)
            if sub is not None and tag not in seen:
                seen.add(tag)
                _walk(sub, values, child)


# Computed once per base class, on first use: element name -> subclass.
# Not at class creation: a subclass may be declared after its base's user.
_CLASSES: dict = {}


class LibvirtConfigObject:
    """Base of every libvirt element class.

    Subclasses set ``root_name`` and declare fields; nothing else. A class
    of a foreign XML namespace (Nova's instance metadata) also sets
    ``namespace`` and ``prefix``, once: its element and every sub-element
    its fields name are in that namespace (attributes are not).
    """

    root_name: str | None = None
    namespace: str | None = None
    prefix: str | None = None

    # Set for each class at its creation: its element's qualified name,
    # the namespace map written on it, its fields and their layout.
    _qname = _nsmap = None
    _fields: tuple[Field, ...] = ()
    _layout = _Layout(())

    _by_name: dict = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.root_name:
            cls._qname = _qualify(cls.root_name, cls.namespace)
        cls._nsmap = {cls.prefix: cls.namespace} if cls.namespace else None
        for field in cls.__dict__.get('_own_fields', ()):
            setattr(cls, field.name, field.class_attribute())
        cls._fields = ()
        for klass in reversed(cls.__mro__):
            cls._fields += klass.__dict__.get('_own_fields', ())
        cls._by_name = {field.name: field for field in cls._fields}
        for alias, ours in cls.aliases.items():
            if ours not in cls._by_name:
                raise TypeError(f'{cls.__name__}: alias {alias!r} names no '
                                f'field {ours!r}')
        cls._layout = _Layout(cls._fields)

    @classmethod
    def qualified_name(cls) -> str:
        """``root_name`` in Clark notation ({namespace}name) if namespaced."""
        return cls._qname

    #: Nova's attribute names where ours differ: {Nova's: ours}.
    aliases: dict[str, str] = {}

    def __init__(self, **kwargs):
        for name, value in self._layout.defaults.items():
            if name not in kwargs:
                self.__dict__[name] = value
        for name, value in kwargs.items():
            name = self.aliases.get(name, name)
            if name not in self._by_name:
                raise TypeError(
                    f'{type(self).__name__} has no field {name!r}')
            setattr(self, name, value)

    def __setattr__(self, name, value):
        field = self._by_name.get(self.aliases.get(name, name))
        if field is None:
            raise AttributeError(
                f'{type(self).__name__} has no field {name!r}')
        self.__dict__[field.name] = field.check(self, value)

    def __getattr__(self, name):
        # Only for names not found otherwise: Nova's spelling of a field.
        ours = type(self).aliases.get(name)
        if ours is None:
            raise AttributeError(
                f'{type(self).__name__} has no field {name!r}')
        return getattr(self, ours)

    @classmethod
    def fields(cls) -> tuple[Field, ...]:
        """Declared fields, base classes' first, in declaration order."""
        return cls._fields

    @classmethod
    def subclasses_by_tag(cls) -> dict:
        """{qualified element name: (subclass of ``cls``, its reader)}."""
        tags = _CLASSES.get(cls)
        if tags is None:
            tags = _CLASSES[cls] = {}
            pending = [cls]
            while pending:
                klass = pending.pop()
                if klass.root_name:
                    tags.setdefault(klass._qname,
                                    (klass, klass._layout.read))
                pending.extend(klass.__subclasses__())
        return tags

    def format_dom(self):
        cls = type(self)
        root = etree.Element(cls._qname, nsmap=cls._nsmap)
        self._write(root)
        return root

    def _write(self, root) -> None:
        """Write the fields onto ``root``, this object's element."""
        layout = self._layout
        els = [root] + [None] * (layout.size - 1)
        values = self.__dict__
        for name, number, skip_falsy, write in layout.writes:
            value = values.get(name)
            if value is None or (skip_falsy and not value):
                continue
            el = els[number]
            if el is None:
                el = layout.ensure(els, number)
            write(el, value)

    def parse_dom(self, xmldoc) -> 'LibvirtConfigObject':
        if xmldoc.tag != self._qname:
            raise exception.LibvirtConfigParseError(
                where='the root element', value=xmldoc.tag,
                expected=f'<{self.root_name}>' + (
                    f' in namespace {self.namespace}' if self.namespace
                    else ''))
        self.__dict__.clear()  # an unread field is empty
        self._layout.read(self.__dict__, xmldoc)
        return self

    def to_xml(self, pretty_print: bool = True) -> str:
        return etree.tostring(self.format_dom(), encoding='unicode',
                              pretty_print=pretty_print)

    def parse_str(self, xmlstr: str) -> 'LibvirtConfigObject':
        return self.parse_dom(parse_xml(xmlstr))

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, f.name) == getattr(other, f.name)
                   for f in self._fields)

    __hash__ = None

    def __repr__(self):
        return f'<{type(self).__name__} {self.to_xml(pretty_print=False)}>'


class LibvirtConfigGuestDevice(LibvirtConfigObject):
    """Base of the elements that live under ``<devices>``."""


class LibvirtConfigGuestDisk(LibvirtConfigGuestDevice):
    """A file-backed disk.

    https://libvirt.org/formatdomain.html#hard-drives-floppy-disks-cdroms
    """

    root_name = 'disk'
    source_type = Attribute('type', Enum('file'))
    source_device = Attribute('device', Enum('disk', 'cdrom'))
    driver_name = Attribute('name', Enum('qemu'), path='driver')
    driver_format = Attribute('type', Enum('raw', 'qcow2'), path='driver')
    source_path = Attribute('file', String(), path='source')
    target_dev = Attribute('dev', String(), path='target')
    target_bus = Attribute('bus', Enum('virtio', 'sata', 'scsi', 'ide'),
                           path='target')
    readonly = Flag('readonly')


class LibvirtConfigGuestSerial(LibvirtConfigGuestDevice):
    """A serial port, here used to log the guest console to a file.

    https://libvirt.org/formatdomain.html#serial-port
    """

    root_name = 'serial'
    type = Attribute('type', Enum('file', 'pty'))
    source_path = Attribute('path', String(), path='source')
    target_port = Attribute('port', Integer(min=0), path='target')


class LibvirtConfigGuestConsole(LibvirtConfigGuestDevice):
    """A console device.

    https://libvirt.org/formatdomain.html#console
    """

    root_name = 'console'
    type = Attribute('type', Enum('pty', 'file'))
    target_type = Attribute('type', Enum('serial', 'virtio', 'lxc'),
                            path='target')


class LibvirtConfigGuestFilesys(LibvirtConfigGuestDevice):
    """A host directory mounted in the guest (an lxc root file system).

    https://libvirt.org/formatdomain.html#filesystems
    """

    root_name = 'filesystem'
    source_type = Attribute('type', Enum('mount'))
    source_dir = Attribute('dir', String(), path='source')
    target_dir = Attribute('dir', String(), path='target')


class LibvirtConfigMemoryBalloon(LibvirtConfigGuestDevice):
    """The memory balloon and its statistics period.

    https://libvirt.org/formatdomain.html#memory-balloon-device

    ``period`` None writes no ``<stats>`` child; libvirt's schema takes
    only a positive period there. ``autodeflate`` and
    ``free_page_reporting`` start as Nova's (on, since Nova 32), so code
    and tests written for Nova's class get its XML; set them False (off)
    or None (absent), as the driver does for ``model='none'``.
    """

    root_name = 'memballoon'
    model = Attribute('model', Enum('virtio', 'virtio-transitional',
                                    'virtio-non-transitional', 'xen',
                                    'none'))
    autodeflate = Attribute('autodeflate', OnOff(), default=True)
    free_page_reporting = Attribute('freePageReporting', OnOff(),
                                    default=True)
    period = Attribute('period', Integer(min=1, max=INT_MAX), path='stats')


# Nova's instance metadata, which Ceilometer's libvirt_metadata discovery
# reads: https://libvirt.org/formatdomain.html#general-metadata
NOVA_NS = 'http://openstack.org/xmlns/libvirt/nova/1.1'


class LibvirtConfigGuestMetaNova(LibvirtConfigObject):
    """Base of the elements of Nova's instance metadata namespace."""

    namespace = NOVA_NS
    prefix = 'nova'


class LibvirtConfigGuestMetaNovaFlavor(LibvirtConfigGuestMetaNova):
    """The instance's flavor: sizes in MiB (memory) and GiB (disks)."""

    root_name = 'flavor'
    name = Attribute('name', String())
    id = Attribute('id', String())
    memory = Text('memory', Integer(min=0))
    disk = Text('disk', Integer(min=0))
    swap = Text('swap', Integer(min=0))
    ephemeral = Text('ephemeral', Integer(min=0))
    vcpus = Text('vcpus', Integer(min=0))
    #: The flavor's extra specs, {key: value}; Nova writes the element
    #: (empty) even for a flavor that has none: give {}.
    extra_specs = NamedValues('extraSpecs', 'extraSpec')


class LibvirtConfigGuestMetaImage(LibvirtConfigGuestMetaNova):
    """The image the instance booted from, as Nova records it (since Nova
    32): its formats, minimum sizes and properties. Nova's class takes an
    ``image_meta`` and picks these from it; this one takes them as fields.
    """

    root_name = 'image'
    #: The image's id; "" (as Nova writes) for an instance with none.
    uuid = Attribute('uuid', String(empty=True))
    container_format = Text('containerFormat', String())
    disk_format = Text('diskFormat', String())
    min_disk = Text('minDisk', Integer(min=0))
    min_ram = Text('minRam', Integer(min=0))
    #: The image's properties, {name: value}; Nova writes the element
    #: (empty) even for an image that has none: give {}.
    properties = NamedValues('properties', 'property')


class LibvirtConfigGuestMetaNovaOwner(LibvirtConfigGuestMetaNova):
    """Who owns the instance: the user and project, ids and names."""

    root_name = 'owner'
    userid = Attribute('uuid', String(), path='user')
    username = Text('user', String())
    projectid = Attribute('uuid', String(), path='project')
    projectname = Text('project', String())


class LibvirtConfigGuestMetaNovaIp(LibvirtConfigGuestMetaNova):
    """One address of a port: ``<nova:ip type= address= ipVersion=/>``."""

    root_name = 'ip'
    ip_type = Attribute('type', String())
    address = Attribute('address', String())
    ip_version = Attribute('ipVersion', Integer(min=4, max=6))


class LibvirtConfigGuestMetaNovaPort(LibvirtConfigGuestMetaNova):
    """One network port of the instance and its addresses."""

    root_name = 'port'
    uuid = Attribute('uuid', String())
    ips = Children(None, LibvirtConfigGuestMetaNovaIp)


class LibvirtConfigGuestMetaNovaPorts(LibvirtConfigGuestMetaNova):
    """The instance's ports; Nova writes the element (empty) for an
    instance with none.
    """

    root_name = 'ports'
    ports = Children(None, LibvirtConfigGuestMetaNovaPort)


class LibvirtConfigGuestMetaNovaInstance(LibvirtConfigGuestMetaNova):
    """``<nova:instance>``: what Nova writes into every guest's metadata.

    https://libvirt.org/formatdomain.html#general-metadata
    """

    root_name = 'instance'
    aliases = {'creationTime': 'creation_time'}
    package = Attribute('version', String(), path='package')
    name = Text('name', String())
    # "YYYY-MM-DD HH:MM:SS", UTC, as Nova writes it
    creation_time = Text('creationTime', String())
    flavor = Child(LibvirtConfigGuestMetaNovaFlavor)
    image = Child(LibvirtConfigGuestMetaImage)
    owner = Child(LibvirtConfigGuestMetaNovaOwner)
    roottype = Attribute('type', Enum('image', 'volume'), path='root')
    rootid = Attribute('uuid', String(), path='root')
    ports = Child(LibvirtConfigGuestMetaNovaPorts)


class LibvirtConfigGuest(LibvirtConfigObject):
    """A whole domain.

    https://libvirt.org/formatdomain.html
    """

    root_name = 'domain'
    virt_type = Attribute('type', Enum('kvm', 'qemu', 'lxc'))
    name = Text('name', String())
    uuid = Text('uuid', String())
    # Kibibytes, as libvirt stores it.
    memory = Text('memory', Integer(min=1), fixed={'unit': 'KiB'})
    vcpus = Text('vcpu', Integer(min=1))
    metadata = Children('metadata', LibvirtConfigGuestMetaNova)
    os_type = Text('os/type', Enum('hvm', 'exe'))
    os_arch = Attribute('arch', String(), path='os/type')
    os_kernel = Text('os/kernel', String())
    os_initrd = Text('os/initrd', String())
    os_cmdline = Text('os/cmdline', String())
    os_init_path = Text('os/init', String())
    os_boot_dev = Attribute('dev', Enum('hd', 'cdrom', 'network', 'fd'),
                            path='os/boot')
    acpi = Flag('features/acpi')
    apic = Flag('features/apic')
    clock_offset = Attribute('offset', Enum('utc', 'localtime'),
                             path='clock')
    devices = Children('devices', LibvirtConfigGuestDevice)

    def add_device(self, device: LibvirtConfigGuestDevice) -> None:
        """Append ``device`` (Nova's spelling of devices.append)."""
        self.devices.append(device)

    def get_device(self, cls: type) -> list:
        """The devices of class ``cls``, in order."""
        return [d for d in self.devices if isinstance(d, cls)]


# nova-libvirt's own metadata: when it last changed a guest's statistics
# period, so that every process (not only the one that changed it) knows
# the guest's last report predates the new period.
MEMSTATS_NS = 'http://openstack.org/xmlns/libvirt/nova-libvirt/memstats/1.0'


class LibvirtConfigGuestMetaMemStatsPeriod(LibvirtConfigObject):
    """``<memstats:period seconds="2" changed="1764412345"/>``: the period
    nova-libvirt set and when (seconds since the epoch).

    https://libvirt.org/formatdomain.html#general-metadata
    """

    namespace = MEMSTATS_NS
    prefix = 'memstats'
    root_name = 'period'
    seconds = Attribute('seconds', Integer(min=0, max=INT_MAX))
    changed_at = Attribute('changed', Integer(min=0))


def metadata_xml(obj: LibvirtConfigObject) -> str:
    """``obj``'s XML as virDomainSetMetadata takes it: unqualified, since
    libvirt puts the element into the namespace it is given (and refuses
    an element that declares one already).
    """
    root = obj.format_dom()
    for el in root.iter():
        el.tag = etree.QName(el).localname
    etree.cleanup_namespaces(root)
    return etree.tostring(root, encoding='unicode')


class DomainFacts(typing.NamedTuple):
    """What the collector and set-period read of a domain's XML."""

    domain_type: str | None
    balloon: LibvirtConfigMemoryBalloon | None
    instance: LibvirtConfigGuestMetaNovaInstance | None
    period_change: LibvirtConfigGuestMetaMemStatsPeriod | None
    #: the file the guest's serial console is logged to, where it is one
    console_log: str | None = None


def _console_log(root) -> str | None:
    """The path of the first serial port logged to a file, or None."""
    for el in root.iterfind('devices/serial'):
        if el.get('type') == 'file':
            return LibvirtConfigGuestSerial().parse_dom(el).source_path
    return None


def _optional(root, cls: type, path: str):
    el = root.find(path + cls.qualified_name())
    return None if el is None else cls().parse_dom(el)


def domain_facts(xml: str) -> DomainFacts:
    """The DomainFacts of a domain's XML, reading only those, so a domain
    using elements this model does not describe (a guest we did not
    create) is still understood.
    """
    root = parse_xml(xml)
    return DomainFacts(
        root.get('type'),
        _optional(root, LibvirtConfigMemoryBalloon, 'devices/'),
        _optional(root, LibvirtConfigGuestMetaNovaInstance, 'metadata/'),
        _optional(root, LibvirtConfigGuestMetaMemStatsPeriod, 'metadata/'),
        _console_log(root))


def domain_balloon(xml: str) -> tuple[str | None, LibvirtConfigMemoryBalloon
                                      | None]:
    """(domain type, balloon or None) of a domain's XML."""
    facts = domain_facts(xml)
    return facts.domain_type, facts.balloon
