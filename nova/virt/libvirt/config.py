"""Libvirt domain XML as Python objects: build and parse, one description.

Every class maps one libvirt element and declares each XML fact once, as
a field descriptor bound to a path under that element. The base class walks
the declarations in order to write XML (``format_dom``) and to read it back
(``parse_dom``), so the two can never drift apart.

Values are Python values inside (``int`` period, ``bool`` autodeflate);
libvirt's spellings exist only at the XML boundary. ``None`` means absent.

This module must not read nova.conf, import libvirt or decide policy: a
class writes exactly what it was given.
"""

from lxml import etree

from nova import exception
from nova import utils

# libvirt stores these figures as a C int.
INT_MAX = 2147483647

# Parser for XML we did not write: no entities, no network, no huge trees.
_SAFE_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, remove_comments=True,
    remove_pis=True, huge_tree=False)


# Largest XML we parse. A domain's XML is a few KiB; parsing 50 MB of small
# elements took 5.7 s and about 2 GB, and the collector reads XML of guests
# it did not create.
MAX_XML_BYTES = 2 * 1024 * 1024


def parse_xml(xmlstr: str | bytes):
    """The root element of ``xmlstr``, read with the hardened parser."""
    if len(xmlstr) > MAX_XML_BYTES:
        raise exception.LibvirtConfigParseError(
            where='XML', value=f'{len(xmlstr)} characters of XML',
            expected=f'at most {MAX_XML_BYTES}, the most nova-libvirt '
                     'parses')
    try:
        return etree.fromstring(xmlstr, _SAFE_PARSER)
    except etree.XMLSyntaxError as e:
        raise exception.LibvirtConfigParseError(
            where='XML', value=str(e), expected='well-formed XML') from None
    except ValueError as e:  # e.g. a str with an encoding declaration
        raise exception.LibvirtConfigParseError(
            where='XML', value=str(e), expected='XML lxml can read') from None


# ---------------------------------------------------------------- kinds

class Kind:
    """How one field's value converts between Python and libvirt text."""

    #: What the field accepts, for error messages ("an integer from 1 to 5")
    description = 'a value'

    def accepts(self, value) -> bool:
        raise NotImplementedError

    def to_xml(self, value) -> str:
        return str(value)

    def from_xml(self, text: str):
        """Return the Python value for ``text`` or raise ValueError."""
        if not self.accepts(text):
            raise ValueError(text)
        return text


class String(Kind):
    description = 'a non-empty string of characters XML can carry'

    def accepts(self, value) -> bool:
        return (isinstance(value, str) and value != '' and
                utils.xml_problem(value) is None)

    def from_xml(self, text: str) -> str:
        # Parsed XML holds only characters XML can carry.
        if not text:
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
        stripped = text.strip()
        if not stripped.lstrip('-').isdigit():
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

    def accepts(self, value) -> bool:
        return value in self.choices

    def from_xml(self, text: str) -> str:
        if text not in self.choices:
            raise ValueError(text)
        return text


class Switch(Kind):
    """A bool that libvirt spells as a pair of words (on/off, yes/no)."""

    def __init__(self, true: str, false: str):
        self.words = {True: true, False: false}
        self.description = f'True or False (written {true!r}/{false!r})'

    def accepts(self, value) -> bool:
        return isinstance(value, bool)

    def to_xml(self, value: bool) -> str:
        return self.words[value]

    def from_xml(self, text: str) -> bool:
        for value, word in self.words.items():
            if text == word:
                return value
        raise ValueError(text)


def OnOff() -> Switch:
    return Switch('on', 'off')


def YesNo() -> Switch:
    return Switch('yes', 'no')


# --------------------------------------------------------------- fields

def _qualify(tag: str, namespace: str | None) -> str:
    return f'{{{namespace}}}{tag}' if namespace else tag


def _tags(path: str | None, namespace: str | None) -> tuple[str, ...]:
    """The (qualified) element names along ``path``, computed once."""
    return tuple(_qualify(t, namespace) for t in path.split('/')) \
        if path else ()


class _Tree:
    """The elements of one object's XML by path, for one format or parse.

    Fields name their element by a tuple of tags, and several share paths
    (``os/type``, ``os/kernel``, ``devices``). Looking each up with lxml's
    ``find`` for every field dominated the model's cost; instead a parse
    walks the element once, down only the paths its class declares (its
    *plan*, computed once per class), and a format creates each path once.
    """

    __slots__ = ('els',)

    def __init__(self, root, plan: dict | None = None):
        self.els = {(): root}
        if plan:
            self._index(root, plan, ())

    def _index(self, el, plan: dict, prefix: tuple) -> None:
        els = self.els
        for child in el:
            sub = plan.get(child.tag)
            if sub is not None:
                key = prefix + (child.tag,)
                if key not in els:  # the first one, as find() would
                    els[key] = child
                    if sub:
                        self._index(child, sub, key)

    def find(self, tags: tuple[str, ...]):
        """The element at ``tags`` (a path of the plan), or None."""
        return self.els.get(tags)

    def ensure(self, tags: tuple[str, ...]):
        """The element at ``tags``, created where missing (format only)."""
        el = self.els.get(tags)
        if el is None:
            el = self.els[tags] = etree.SubElement(self.ensure(tags[:-1]),
                                                   tags[-1])
        return el


class Field:
    """A declared XML fact of a LibvirtConfigObject subclass."""

    #: The value of a field nobody set.
    empty = None

    @property
    def paths(self) -> tuple[tuple[str, ...], ...]:
        """The element paths a parse must index for this field."""
        return (self.tags,)

    def __init__(self, kind: Kind | None = None, path: str | None = None):
        self.kind, self.path = kind, path

    def __set_name__(self, owner, name):
        self.name = name
        own = owner.__dict__.get('_own_fields', ())
        owner._own_fields = own + (self,)
        # Sub-elements live in the owner's namespace, if it has one.
        self.tags = _tags(self.path, owner.namespace)

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return obj.__dict__.get(self.name, self.empty)

    def __set__(self, obj, value):
        obj.__dict__[self.name] = self.check(obj, value)

    def check(self, obj, value):
        if value is None or self.kind.accepts(value):
            return value
        raise exception.InvalidLibvirtConfigValue(
            cls=type(obj).__name__, field=self.name, value=value,
            expected=self.kind.description + ' or None')

    def where(self, el) -> str:
        return f'<{el.tag}>'

    def read(self, el, raw: str):
        try:
            return self.kind.from_xml(raw)
        except ValueError:
            raise exception.LibvirtConfigParseError(
                where=self.where(el), value=raw,
                expected=self.kind.description) from None

    def format(self, obj, root: _Tree) -> None:
        raise NotImplementedError

    def parse(self, obj, root: _Tree) -> None:
        raise NotImplementedError


class Attribute(Field):
    """An attribute of the object's element or of a sub-element at path."""

    def __init__(self, xml_name: str, kind: Kind, path: str | None = None):
        super().__init__(kind, path)
        self.xml_name = xml_name

    def where(self, el) -> str:
        return f'<{el.tag}> attribute {self.xml_name!r}'

    def format(self, obj, root):
        value = obj.__dict__.get(self.name)
        if value is not None:
            root.ensure(self.tags).set(self.xml_name,
                                         self.kind.to_xml(value))

    def parse(self, obj, root):
        el = root.els.get(self.tags)
        raw = None if el is None else el.get(self.xml_name)
        if raw is None:
            obj.__dict__[self.name] = None
            return
        try:
            obj.__dict__[self.name] = self.kind.from_xml(raw)
        except ValueError:
            self.read(el, raw)  # raises the error naming the place


class Text(Field):
    """The text of a sub-element, with attributes libvirt fixes (unit)."""

    def __init__(self, path: str, kind: Kind,
                 fixed: dict[str, str] | None = None):
        super().__init__(kind, path)
        self.fixed = fixed or {}

    def format(self, obj, root):
        value = obj.__dict__.get(self.name)
        if value is not None:
            el = root.ensure(self.tags)
            el.text = self.kind.to_xml(value)
            for name, fixed_value in self.fixed.items():
                el.set(name, fixed_value)

    def parse(self, obj, root):
        el = root.els.get(self.tags)
        if el is None:
            obj.__dict__[self.name] = None
            return
        for name, fixed_value in self.fixed.items():
            raw = el.get(name)
            if raw is not None and raw != fixed_value:
                raise exception.LibvirtConfigParseError(
                    where=f'<{el.tag}> attribute {name!r}', value=raw,
                    expected=repr(fixed_value))
        # No text at all is absent: the element may exist for attributes
        # other fields declare (<nova:user uuid="..."/>).
        obj.__dict__[self.name] = (None if el.text is None else
                                   self.read(el, el.text))


class Flag(Field):
    """An empty element whose presence means True (``<acpi/>``)."""

    empty = False

    def __init__(self, path: str):
        super().__init__(None, path)

    def check(self, obj, value):
        if isinstance(value, bool):
            return value
        raise exception.InvalidLibvirtConfigValue(
            cls=type(obj).__name__, field=self.name, value=value,
            expected='True or False')

    def format(self, obj, root):
        if obj.__dict__.get(self.name):
            root.ensure(self.tags)

    def parse(self, obj, root):
        obj.__dict__[self.name] = root.find(self.tags) is not None


class Children(Field):
    """A list of child objects under path, picked by their element name."""

    def __init__(self, path: str, base: type):
        super().__init__(None, path)
        self.base = base

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return obj.__dict__.setdefault(self.name, [])

    def check(self, obj, value):
        if isinstance(value, list) and all(
                isinstance(item, self.base) for item in value):
            return value
        raise exception.InvalidLibvirtConfigValue(
            cls=type(obj).__name__, field=self.name, value=value,
            expected=f'a list of {self.base.__name__}')

    def format(self, obj, root):
        items = obj.__dict__.get(self.name)
        if items:
            parent = root.ensure(self.tags)
            for item in items:
                parent.append(item.format_dom())

    def parse(self, obj, root):
        items = []
        parent = root.find(self.tags)
        for el in (() if parent is None else parent):
            cls = self.base.class_for(el.tag)
            if cls is not None:  # unmodelled devices are ignored
                item = cls()
                item.parse_dom(el)
                items.append(item)
        obj.__dict__[self.name] = items


# -------------------------------------------------------------- objects

class Child(Field):
    """One optional child object (its element under path), or None."""

    def __init__(self, cls: type, path: str | None = None):
        super().__init__(None, path)
        self.cls = cls

    def check(self, obj, value):
        if value is None or isinstance(value, self.cls):
            return value
        raise exception.InvalidLibvirtConfigValue(
            cls=type(obj).__name__, field=self.name, value=value,
            expected=f'a {self.cls.__name__} or None')

    def format(self, obj, root):
        value = obj.__dict__.get(self.name)
        if value is not None:
            root.ensure(self.tags).append(value.format_dom())

    def __set_name__(self, owner, name):
        super().__set_name__(owner, name)
        # The child's own element, under path.
        self.element = self.tags + (self.cls.qualified_name(),)

    @property
    def paths(self):
        return (self.element,)

    def parse(self, obj, root):
        el = root.find(self.element)
        obj.__dict__[self.name] = (None if el is None else
                                   self.cls().parse_dom(el))


# Computed once per class, on first use: its fields in order, the paths a
# parse indexes, and for a base class the element name -> subclass map
# Children uses.
_FIELDS: dict = {}
_CLASSES: dict = {}
_PLANS: dict = {}


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

    @classmethod
    def qualified_name(cls) -> str:
        """``root_name`` in Clark notation ({namespace}name) if namespaced."""
        return _qualify(cls.root_name, cls.namespace)

    def __init__(self, **kwargs):
        for name, value in kwargs.items():
            if not isinstance(getattr(type(self), name, None), Field):
                raise TypeError(
                    f'{type(self).__name__} has no field {name!r}')
            setattr(self, name, value)

    @classmethod
    def fields(cls) -> tuple[Field, ...]:
        """Declared fields, base classes' first, in declaration order."""
        found = _FIELDS.get(cls)
        if found is None:
            found = ()
            for klass in reversed(cls.__mro__):
                found += klass.__dict__.get('_own_fields', ())
            _FIELDS[cls] = found
        return found

    @classmethod
    def plan(cls) -> dict:
        """The tree of element paths the fields read: {tag: {tag: ...}}."""
        found = _PLANS.get(cls)
        if found is None:
            found = _PLANS[cls] = {}
            for field in cls.fields():
                for path in field.paths:
                    node = found
                    for tag in path:
                        node = node.setdefault(tag, {})
        return found

    @classmethod
    def class_for(cls, tag: str):
        """The subclass of ``cls`` whose (qualified) element is ``tag``,
        or None."""
        tags = _CLASSES.get(cls)
        if tags is None:
            tags = _CLASSES[cls] = {}
            pending = [cls]
            while pending:
                klass = pending.pop()
                if klass.root_name:
                    tags.setdefault(klass.qualified_name(), klass)
                pending.extend(klass.__subclasses__())
        return tags.get(tag)

    def format_dom(self):
        cls = type(self)
        nsmap = {cls.prefix: cls.namespace} if cls.namespace else None
        root = etree.Element(cls.qualified_name(), nsmap=nsmap)
        tree = _Tree(root)
        for field in self.fields():
            field.format(self, tree)
        return root

    def parse_dom(self, xmldoc) -> 'LibvirtConfigObject':
        if xmldoc.tag != self.qualified_name():
            raise exception.LibvirtConfigParseError(
                where='the root element', value=xmldoc.tag,
                expected=f'<{self.root_name}>' + (
                    f' in namespace {self.namespace}' if self.namespace
                    else ''))
        tree = _Tree(xmldoc, type(self).plan())
        for field in self.fields():
            field.parse(self, tree)
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
                   for f in self.fields())

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
    only a positive period there.
    """

    root_name = 'memballoon'
    model = Attribute('model', Enum('virtio', 'virtio-transitional',
                                    'virtio-non-transitional', 'xen',
                                    'none'))
    autodeflate = Attribute('autodeflate', OnOff())
    free_page_reporting = Attribute('freePageReporting', OnOff())
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


class LibvirtConfigGuestMetaNovaOwner(LibvirtConfigGuestMetaNova):
    """Who owns the instance: the user and project, ids and names."""

    root_name = 'owner'
    userid = Attribute('uuid', String(), path='user')
    username = Text('user', String())
    projectid = Attribute('uuid', String(), path='project')
    projectname = Text('project', String())


class LibvirtConfigGuestMetaNovaInstance(LibvirtConfigGuestMetaNova):
    """``<nova:instance>``: what Nova writes into every guest's metadata.

    https://libvirt.org/formatdomain.html#general-metadata
    """

    root_name = 'instance'
    package = Attribute('version', String(), path='package')
    name = Text('name', String())
    # "YYYY-MM-DD HH:MM:SS", UTC, as Nova writes it
    creation_time = Text('creationTime', String())
    flavor = Child(LibvirtConfigGuestMetaNovaFlavor)
    owner = Child(LibvirtConfigGuestMetaNovaOwner)
    roottype = Attribute('type', Enum('image', 'volume'), path='root')
    rootid = Attribute('uuid', String(), path='root')


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

    def get_device(self, cls: type) -> list:
        """The devices of class ``cls``, in order."""
        return [d for d in self.devices if isinstance(d, cls)]


def domain_balloon(xml: str) -> tuple[str | None, LibvirtConfigMemoryBalloon
                                      | None]:
    """(domain type, balloon or None) of a domain's XML.

    Reads just these two facts, so a domain using elements this model does
    not describe (a guest we did not create) is still understood.
    """
    facts = domain_facts(xml)
    return facts[0], facts[1]


def domain_facts(xml: str) -> tuple:
    """(domain type, balloon or None, nova instance metadata or None) of a
    domain's XML, reading only those."""
    root = parse_xml(xml)
    el = root.find('devices/memballoon')
    balloon = (None if el is None else
               LibvirtConfigMemoryBalloon().parse_dom(el))
    el = root.find('metadata/' +
                   LibvirtConfigGuestMetaNovaInstance.qualified_name())
    instance = (None if el is None else
                LibvirtConfigGuestMetaNovaInstance().parse_dom(el))
    return root.get('type'), balloon, instance
