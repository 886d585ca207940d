"""A flavor extra spec, described: its name, what it does, the value it
takes. The description is what is checked and what the error says.
"""

import dataclasses

from nova import exception
from nova import utils


@dataclasses.dataclass(frozen=True)
class ExtraSpecValidator:
    """One extra spec. ``value`` describes its value as
    ``nova.utils.parse_value`` reads it: ``type`` (int, bool or str),
    ``description``, and ``min``/``max`` (int), ``enum`` or ``pattern``
    and ``shape`` (str), or a ``note`` on what a value means.
    """

    name: str
    description: str
    value: dict

    def __post_init__(self):
        if self.value.get('type') not in (int, bool, str):
            raise ValueError(f'{self.name}: unsupported value type '
                             f'{self.value.get("type")!r}')

    @property
    def expected(self) -> str:
        """What the value may be, in words."""
        return utils.expected_value(self.value)

    def parse(self, value):
        """``value`` (as a flavor holds it: text) as its Python value;
        ValidationError, one line naming the key, the value and what it
        takes, if it does not fit.
        """
        try:
            return utils.parse_value(self.value, value)
        except ValueError:
            raise exception.ValidationError(
                detail=f'Flavor extra spec {self.name}={utils.shown(value)} '
                       f'is not valid: expected {self.expected}.') from None
