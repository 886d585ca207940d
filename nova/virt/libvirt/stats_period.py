"""Changing the statistics period of guests that already exist.

Upstream Nova writes ``<stats period>`` only when it builds a guest's XML,
so a new ``mem_stats_period_seconds`` reaches a running guest only at its
next hard reboot. libvirt can change it in place
(``virDomainSetMemoryStatsPeriod``, live and in the persistent
definition). ``decide`` says, for one guest, whether and how: a pure
function of plain values, with its table in the docstring. The driver
gathers the facts and applies the decision through ``Guest``; commands only
print.

Which period a guest should have is ``guest_period``'s decision: its
flavor's extra spec ``hw:mem_stats_period_seconds``, else its image's
property ``hw_mem_stats_period_seconds``, else the host's option, the
flavor's and image's read from the guest's own ``<nova:instance>``
metadata once it exists. This module must not import libvirt or read
nova.conf.
"""

import dataclasses

from nova import exception
from nova.api.validation.extra_specs import hw as hw_specs
from nova.objects import image_meta as image_meta_obj

CHANGE = 'change'      # libvirt can set the period; do it
KEEP = 'keep'          # already as wanted
CANNOT = 'cannot'      # the guest must be recreated to get statistics

RECREATE = ('recreate the guest with [libvirt] mem_stats_period_seconds '
            'above 0 (in Nova: a hard reboot)')


@dataclasses.dataclass(frozen=True, slots=True)
class GuestFacts:
    """What decides a guest's change, read from libvirt."""

    name: str
    domain_type: str | None
    active: bool
    persistent: bool
    #: LibvirtConfigMemoryBalloon of the live XML (running guests) and of
    #: the persistent definition (persistent guests), else None.
    live_balloon: object = None
    config_balloon: object = None
    #: Nova's LibvirtConfigGuestMetaNovaInstance of the definition in
    #: force, or None: where the guest's own period is asked for.
    metadata: object = None


@dataclasses.dataclass(frozen=True, slots=True)
class PeriodChange:
    """What to do to one guest and the line that says so."""

    name: str
    action: str
    live: bool = False    # VIR_DOMAIN_AFFECT_LIVE
    config: bool = False  # VIR_DOMAIN_AFFECT_CONFIG
    message: str = ''


#: Where a guest's period comes from, in the order they are asked.
EXTRA_SPEC = hw_specs.MEM_STATS_PERIOD.name
IMAGE_PROPERTY = 'hw_mem_stats_period_seconds'
OPTION = '[libvirt] mem_stats_period_seconds'


@dataclasses.dataclass(frozen=True, slots=True)
class Wanted:
    """The period a guest should have (0: none) and what asks for it."""

    seconds: int
    #: 'flavor', 'image', 'host' (the option) or 'given' (set-period)
    source: str

    @property
    def why(self) -> str:
        """What set it, as the operator would change it."""
        return {'flavor': f'its flavor extra spec {EXTRA_SPEC}',
                'image': f'its image property {IMAGE_PROPERTY}',
                'host': OPTION, 'given': 'set-period'}[self.source]

    @property
    def asked(self) -> str | None:
        """Said after a guest's line where the guest asks for a period of
        its own (its flavor or image), else None.
        """
        if self.source in ('flavor', 'image'):
            return f'as {self.why} asks'
        return None


def guest_period(host_period: int, extra_specs: dict | None = None,
                 image_properties: dict | None = None) -> Wanted:
    """The statistics period of a guest of a flavor with ``extra_specs``
    booted from an image with ``image_properties`` (names to values, as
    text or Python), on a host whose option says ``host_period``.

    ============================  ============================  ==========
    flavor's extra spec           image's property              period
    ============================  ============================  ==========
    set                           unset, or the same period     flavor's
    unset                         set                           image's
    unset                         unset                         option's
    set                           set to another period         refused
    ============================  ============================  ==========

    0 or below means none, wherever it is set (so -1 and 0 agree). A
    value that is not an integer up to INT_MAX raises ValidationError, a
    disagreement FlavorImageConflict: both one line naming the keys and
    values.
    """
    flavor = image = None
    raw_flavor = (extra_specs or {}).get(EXTRA_SPEC)
    if raw_flavor is not None:
        flavor = max(0, hw_specs.MEM_STATS_PERIOD.parse(raw_flavor))
    if image_properties and IMAGE_PROPERTY in image_properties:
        props = image_meta_obj.ImageMetaProps.from_dict(
            {IMAGE_PROPERTY: image_properties[IMAGE_PROPERTY]})
        image = max(0, props.hw_mem_stats_period_seconds)
    if flavor is not None and image is not None and flavor != image:
        raise exception.FlavorImageConflict(
            setting='the memory statistics period', flavor_key=EXTRA_SPEC,
            flavor_val=raw_flavor, image_key=IMAGE_PROPERTY,
            image_val=image_properties[IMAGE_PROPERTY])
    if flavor is not None:
        return Wanted(flavor, 'flavor')
    if image is not None:
        return Wanted(image, 'image')
    return Wanted(max(0, host_period), 'host')


def metadata_period(host_period: int, metadata=None) -> Wanted:
    """``guest_period`` from a guest's LibvirtConfigGuestMetaNovaInstance
    (None: a guest without Nova's metadata asks for nothing of its own).
    """
    flavor = metadata.flavor if metadata is not None else None
    image = metadata.image if metadata is not None else None
    return guest_period(
        host_period, flavor.extra_specs if flavor is not None else None,
        image.properties if image is not None else None)


def asked_period(host_period: int, metadata=None) -> Wanted | None:
    """The Wanted of a guest with ``metadata`` (what period, and what
    decides it), or None where its metadata asks for one it cannot have
    (a value that is not a period, or a flavor and image that disagree).
    """
    try:
        return metadata_period(host_period, metadata)
    except exception.InvalidInstance:
        return None


def wanted_period(host_period: int, metadata=None) -> int | None:
    """The period (0: none) a guest with ``metadata`` should have, or None
    where its metadata asks for one it cannot have.
    """
    asked = asked_period(host_period, metadata)
    return None if asked is None else asked.seconds


def disabled_remedy(wanted: Wanted | None) -> str:
    """How a guest whose balloon is disabled (model none, or none at all)
    gets statistics, as what decides its period says (``wanted``: the
    period it asks for; None where that is not known). libvirt cannot add
    a balloon to a guest, so each way goes through recreating it.

    =====================  =========  =====================================
    decided by             period     remedy
    =====================  =========  =====================================
    not known              any        recreate it with the option above 0
    any                    above 0    recreate it: it asks for one already
    its flavor             0          resize it to a flavor with a period
    its image              0          rebuild it from an image with one,
                                      or resize it to a flavor with one
    the option             0          set the option above 0, recreate it
    =====================  =========  =====================================
    """
    if wanted is None:
        return RECREATE
    if wanted.seconds:
        return (f'it asks for a {wanted.seconds}s period ({wanted.why}) but '
                'was created without one: recreate it (in Nova: a hard '
                'reboot)')
    if wanted.source == 'flavor':
        return (f'{wanted.why} is 0: resize it to a flavor whose '
                f'{EXTRA_SPEC} is above 0, or unset')
    if wanted.source == 'image':
        return (f'{wanted.why} is 0: rebuild it from an image whose '
                f'{IMAGE_PROPERTY} is above 0, or unset, or resize it to a '
                f'flavor with {EXTRA_SPEC} above 0')
    return (f'set {OPTION} above 0 and recreate it (in Nova: a hard '
            'reboot)')


def _period(balloon) -> int:
    """The period a balloon has: libvirt writes no <stats> for 0."""
    return balloon.period or 0


def _shown(seconds: int) -> str:
    return f'{seconds}s' if seconds else 'none'


def decide(facts: GuestFacts, period: int, asked: str | None = None,
           remedy: str = RECREATE, dry_run: bool = False) -> PeriodChange:
    """How to give ``facts``' guest the statistics period ``period`` (>= 0),
    its line ending with ``asked`` (in brackets) where given; ``remedy``:
    how a guest whose balloon is disabled gets one (``disabled_remedy``);
    ``dry_run``: a change is said as one that would be made.

    ``live`` is the running guest's balloon, ``config`` its persistent
    definition's; a definition a guest does not have (shut off: no live
    one; transient: no persistent one) plays no part.

    ============================  =================  =======================
    the guest                     its balloon(s)     decision
    ============================  =================  =======================
    lxc                           (none)             cannot: containers
                                                     have no balloon
    period > 0                    none or absent     cannot: libvirt cannot
                                                     add a balloon;
                                                     recreate the guest
    period 0                      none or absent     keep: no statistics
                                                     already
    any                           virtio, already    keep
                                  at ``period``
    running, persistent           virtio             change live + config
    running, transient            virtio             change live only
    shut off, persistent          virtio             change config only
    ============================  =================  =======================

    A period of 0 stops the reports: the balloon stays, and its last
    figures go stale. "Already at" compares each definition the guest has;
    only those that differ are changed.
    """
    change = _decide(facts, period, remedy)
    if dry_run and change.action == CHANGE:
        change = dataclasses.replace(change, message=change.message.replace(
            f'{facts.name}: period ', f'{facts.name}: would change period ',
            1))
    if asked is None:
        return change
    return dataclasses.replace(
        change, message=f'{change.message[:-1]} ({asked}).')


def _decide(facts: GuestFacts, period: int, remedy: str) -> PeriodChange:
    name = facts.name
    if facts.domain_type == 'lxc':
        return PeriodChange(name, CANNOT, message=(
            f'{name}: cannot change: lxc guests have no memory balloon.'))
    targets = {}
    if facts.active:
        targets['live'] = facts.live_balloon
    if facts.persistent:
        targets['config'] = facts.config_balloon
    disabled = [t for t, b in targets.items()
                if b is None or b.model == 'none']
    if disabled:
        if period == 0:
            return PeriodChange(name, KEEP, message=(
                f'{name}: statistics already disabled (balloon model '
                'none); unchanged.'))
        what = ('has no memory balloon' if all(
            targets[t] is None for t in disabled) else
            'has its balloon disabled (model none)')
        return PeriodChange(name, CANNOT, message=(
            f'{name}: cannot change: the guest {what}, and libvirt cannot '
            f'add one to an existing guest; {remedy}.'))
    was = {t: _period(b) for t, b in targets.items()}
    differ = {t for t, p in was.items() if p != period}
    if not differ:
        return PeriodChange(name, KEEP, message=(
            f'{name}: period already {_shown(period)}; unchanged.'
            if period else f'{name}: no statistics period already; '
                           'unchanged.'))
    if len(set(was.values())) == 1:
        before = _shown(next(iter(was.values())))
    else:
        before = ', '.join(f'{t} {_shown(p)}' for t, p in was.items())
    if differ == {'live', 'config'}:
        where = 'live and in the persistent definition'
    elif differ == {'live'}:
        where = ('live only (transient guest: no persistent definition)'
                 if not facts.persistent else
                 'live (the persistent definition has it already)')
    elif facts.active:
        where = 'in the persistent definition (live has it already)'
    else:
        where = ('in the persistent definition only (guest is shut off; '
                 'it applies at the next start)')
    after = _shown(period) if period else (
        '0 (reports stop; the balloon stays and its last figures go stale)')
    return PeriodChange(
        name, CHANGE, live='live' in differ, config='config' in differ,
        message=f'{name}: period {before} -> {after}, {where}.')


def stuck(name: str, busy: float) -> str:
    """The line of a guest whose QEMU does not answer: libvirt can change
    neither its live period nor its definition until it does (both wait
    for the job a stuck call holds).
    """
    return (f'{name}: cannot change now: its QEMU has not answered libvirt '
            f'for {busy:.0f}s (stopped or hung), and libvirt changes neither '
            'the live period nor the persistent definition until it does: '
            'resume it (kill -CONT its QEMU if stopped) and run this again.')


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """One guest's decision as applied, or the error that stopped it."""

    name: str
    change: PeriodChange | None
    error: str | None = None
    #: what else differs from what the guest asks for and waits for its
    #: recreation (free page reporting), said after its line; None: nothing
    waits: str | None = None

    @property
    def line(self) -> str:
        line = self.error if self.change is None else self.change.message
        return line if self.waits is None else f'{line} {self.waits}'
