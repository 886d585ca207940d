"""The instance: what the user asked for, independent of the hypervisor.

Besides its size, an instance carries who owns it and its flavor, as Nova's
do: the guest's ``<nova:instance>`` metadata is made of them, and
Ceilometer's compute agent meters only guests that carry it. On a
standalone host nobody assigns these, so they have defaults (see
``__post_init__``): stable, documented, and the same for the same input.
"""

import dataclasses
import datetime
import getpass
import re
import uuid as uuidlib

from nova import exception
from nova import utils

# libvirt accepts more, but these names are safe as file and domain names.
NAME_RE = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]{0,62}')

#: The project of instances nobody assigned one.
DEFAULT_PROJECT_NAME = 'standalone'
# Namespace of the stable ids derived from names (uuid5).
_ID_NAMESPACE = uuidlib.uuid5(uuidlib.NAMESPACE_URL,
                              'https://opendev.org/openstack/nova/libvirt')


def stable_id(kind: str, name: str) -> str:
    """A Keystone-style id (32 hex digits) that ``name`` always maps to."""
    return uuidlib.uuid5(_ID_NAMESPACE, f'{kind}:{name}').hex


def _current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, no LOGNAME
        return 'nova-libvirt'


@dataclasses.dataclass
class Instance:
    """An instance to build a guest for.

    Fields are checked on creation; a bad one raises InvalidInstance naming
    the field, the value and what is allowed.
    """

    name: str
    memory_mb: int = 256
    vcpus: int = 1
    uuid: str = dataclasses.field(
        default_factory=lambda: str(uuidlib.uuid4()))
    #: Defaults: the instance name.
    display_name: str | None = None
    #: Defaults: "standalone", and an id derived from the name.
    project_name: str | None = None
    project_id: str | None = None
    #: Defaults: the user running the command, and an id derived from it.
    user_name: str | None = None
    user_id: str | None = None
    #: Defaults: "m<memory_mb>-c<vcpus>" for both.
    flavor_name: str | None = None
    flavor_id: str | None = None
    #: When it was created (UTC); defaults to now.
    created_at: datetime.datetime | None = None
    #: The flavor's extra specs, {key: value}, as Nova's flavors carry
    #: them (nova.api.validation.extra_specs checks the ones it knows).
    flavor_extra_specs: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.name, str) or not NAME_RE.fullmatch(
                self.name):
            raise exception.InvalidInstance(
                reason=f'Instance name {utils.shown(self.name)} is not '
                       'valid: use 1 to 63 letters, digits, "_", "." or '
                       '"-", starting with a letter or digit.')
        for field, low in (('memory_mb', 16), ('vcpus', 1)):
            value = getattr(self, field)
            if (not isinstance(value, int) or isinstance(value, bool) or
                    value < low):
                raise exception.InvalidInstance(
                    reason=f'Instance {field} {value!r} is not valid: '
                           f'expected an integer of at least {low}.')
        try:
            self.uuid = str(uuidlib.UUID(str(self.uuid)))
        except ValueError:
            raise exception.InvalidInstance(
                reason=f'Instance uuid {self.uuid!r} is not a UUID.') from None
        self._set_owner_defaults()
        for field in ('display_name', 'project_name', 'user_name',
                      'flavor_name', 'flavor_id'):
            self._check_text(field)
        for field in ('project_id', 'user_id'):
            self._check_id(field)
        self._check_extra_specs()
        if self.created_at is None:
            self.created_at = datetime.datetime.now(datetime.timezone.utc)

    def _set_owner_defaults(self):
        if self.display_name is None:
            self.display_name = self.name
        if self.project_name is None:
            self.project_name = DEFAULT_PROJECT_NAME
        if self.project_id is None:
            self.project_id = stable_id('project', self.project_name)
        if self.user_name is None:
            self.user_name = _current_user()
        if self.user_id is None:
            self.user_id = stable_id('user', self.user_name)
        if self.flavor_name is None:
            self.flavor_name = f'm{self.memory_mb}-c{self.vcpus}'
        if self.flavor_id is None:
            self.flavor_id = self.flavor_name

    def _check_text(self, field: str) -> None:
        value = getattr(self, field)
        problem = None
        if not isinstance(value, str) or not value.strip():
            problem = 'is empty'
        elif len(value) > 255:
            problem = 'is longer than 255 characters'
        else:
            problem = utils.xml_problem(value)
        if problem:
            raise exception.InvalidInstance(
                reason=f'Instance {field} {utils.shown(value)} {problem}: '
                       'give 1 to 255 printable characters.')

    def _check_extra_specs(self) -> None:
        specs = self.flavor_extra_specs
        if not isinstance(specs, dict):
            raise exception.InvalidInstance(
                reason=f'Instance flavor_extra_specs {utils.shown(specs)} '
                       'is not valid: expected a dict of keys to values.')
        for key, value in specs.items():
            fits = (isinstance(key, str) and 0 < len(key.strip()) and
                    len(key) <= 255 and utils.xml_problem(key) is None and
                    isinstance(value, (str, int)) and
                    utils.xml_problem(str(value)) is None)
            if not fits:
                raise exception.InvalidInstance(
                    reason=f'Flavor extra spec {utils.shown(key)}='
                           f'{utils.shown(value)} is not valid: give a key '
                           'of 1 to 255 printable characters and a text '
                           'value.')

    def _check_id(self, field: str) -> None:
        value = getattr(self, field)
        try:
            uuidlib.UUID(str(value))
        except ValueError:
            raise exception.InvalidInstance(
                reason=f'Instance {field} {utils.shown(value)} is not a '
                       'UUID: give one, as Keystone ids are (32 hex digits, '
                       'dashes optional).') from None
