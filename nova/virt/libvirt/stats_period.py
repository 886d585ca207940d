"""Changing the statistics period of guests that already exist.

Upstream Nova writes ``<stats period>`` only when it builds a guest's XML,
so a new ``mem_stats_period_seconds`` reaches a running guest only at its
next hard reboot. libvirt can change it in place
(``virDomainSetMemoryStatsPeriod``, live and in the persistent
definition). ``decide`` says, for one guest, whether and how: a pure
function of plain values, with its table in the docstring. The driver
gathers the facts and applies the decision through ``Guest``; commands only
print. This module must not import libvirt or read nova.conf.
"""

import dataclasses

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


@dataclasses.dataclass(frozen=True, slots=True)
class PeriodChange:
    """What to do to one guest and the line that says so."""

    name: str
    action: str
    live: bool = False    # VIR_DOMAIN_AFFECT_LIVE
    config: bool = False  # VIR_DOMAIN_AFFECT_CONFIG
    message: str = ''


def wanted_period(host_period: int, metadata=None) -> int:
    """The statistics period a guest should have (0: none): ``[libvirt]
    mem_stats_period_seconds``, 0 or below meaning none. ``metadata`` is
    the guest's LibvirtConfigGuestMetaNovaInstance, or None.
    """
    return max(0, host_period)


def _period(balloon) -> int:
    """The period a balloon has: libvirt writes no <stats> for 0."""
    return balloon.period or 0


def _shown(seconds: int) -> str:
    return f'{seconds}s' if seconds else 'none'


def decide(facts: GuestFacts, period: int) -> PeriodChange:
    """How to give ``facts``' guest the statistics period ``period`` (>= 0).

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
            f'add one to an existing guest; {RECREATE}.'))
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

    @property
    def line(self) -> str:
        return self.error if self.change is None else self.change.message
