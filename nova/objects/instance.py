"""The instance: what the user asked for, independent of the hypervisor."""

import dataclasses
import re
import uuid as uuidlib

from nova import exception
from nova import utils

# libvirt accepts more, but these names are safe as file and domain names.
NAME_RE = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]{0,62}')


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

    def __post_init__(self):
        if not isinstance(self.name, str) or not NAME_RE.fullmatch(
                self.name):
            raise exception.InvalidInstance(
                reason=f'Instance name {self._shown(self.name)} is not '
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

    @staticmethod
    def _shown(value) -> str:
        return utils.shorten(repr(value))
