"""Exceptions raised by the nova-libvirt slice.

Each class carries a message format; callers pass the keyword arguments
it names. This module must not import libvirt or nova.conf.
"""


class NovaException(Exception):
    """Base class: ``msg_fmt`` is formatted with the keyword arguments.

    A message is always one line: libvirt's multi-line errors (a schema
    failure lists every element it tried) are folded into one.
    """

    msg_fmt = 'An unknown error occurred.'

    def __init__(self, message: str | None = None, **kwargs):
        self.kwargs = kwargs
        if message is None:
            message = self.msg_fmt % kwargs
        super().__init__(' '.join(message.split()))


class InvalidConfig(NovaException, ValueError):
    """The configuration cannot be loaded: a file is missing or malformed."""

    msg_fmt = 'Cannot load the configuration: %(reason)s'


class InvalidConfigValue(InvalidConfig):
    """A configuration value was refused when the configuration loaded."""

    msg_fmt = ('[%(group)s] %(option)s = %(value)s%(where)s is not valid: '
               '%(reason)s.')


class InvalidLibvirtConfigValue(NovaException, ValueError):
    """A Python value was assigned to a LibvirtConfig* field it cannot hold."""

    msg_fmt = ('%(cls)s.%(field)s cannot be %(value)r: expected '
               '%(expected)s.')


class LibvirtConfigParseError(NovaException, ValueError):
    """Libvirt XML holds a value a modelled field cannot take."""

    msg_fmt = ('Cannot parse %(where)s: %(value)r is not %(expected)s.')


class InvalidInstance(NovaException, ValueError):
    """An instance or image description cannot make a guest."""

    msg_fmt = '%(reason)s'


class ValidationError(InvalidInstance):
    """A flavor extra spec or image property is refused: one line naming
    the key, the value and what it takes.
    """

    msg_fmt = '%(detail)s'


class FlavorImageConflict(InvalidInstance):
    """The flavor and the image ask for different values of one setting."""

    msg_fmt = ('The flavor and the image disagree on %(setting)s: flavor '
               'extra spec %(flavor_key)s=%(flavor_val)s, image property '
               '%(image_key)s=%(image_val)s; unset one of them or make them '
               'equal.')


class HypervisorUnavailable(NovaException):
    """The libvirt connection cannot be opened."""

    msg_fmt = 'Cannot connect to %(uri)s: %(reason)s'


class HypervisorNotAnswering(HypervisorUnavailable):
    """libvirt did not answer in time (a frozen daemon)."""

    msg_fmt = '%(uri)s: %(reason)s'


class HypervisorCallFailed(HypervisorUnavailable):
    """Connected, but a call about every guest (a listing) failed."""

    msg_fmt = '%(uri)s: %(reason)s'


class InstanceNotFound(NovaException):
    """``command``: how memstats is run (nova.hints.command('memstats'))."""

    msg_fmt = ('No guest named %(name)s on %(uri)s: "%(command)s" lists the '
               'guests there.')


class LibvirtCallFailed(NovaException):
    """A libvirt call failed; keeps libvirt's own message."""

    msg_fmt = 'libvirt %(call)s failed for guest %(name)s: %(reason)s'


class GuestImageBuildFailed(NovaException):
    msg_fmt = 'Cannot build the test guest image: %(reason)s'
