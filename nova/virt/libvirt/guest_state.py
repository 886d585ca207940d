"""A guest's stats_state: why it has or lacks fresh figures, decided from
plain values.

``classify`` is the decision, a pure function with its table in its
docstring: not running, its QEMU unresponsive, no balloon or no period,
paused, starting, never reported, reporting without figures, stale, ok,
each with a one-line reason an operator can act on.
``period_may_have_changed`` says when a guest's reports no longer fit the
period cached for it. nova.virt.libvirt.memstats gathers the facts and
applies both. Nothing here talks to libvirt or reads nova.conf.
"""

from nova import hints

OK = 'ok'
STALE = 'stale'
PAUSED = 'paused'
NO_STATS_PERIOD = 'no-stats-period'
BALLOON_DISABLED = 'balloon-disabled'
NO_GUEST_DRIVER = 'no-guest-driver'
NOT_BOOTED = 'not-booted'
INCONSISTENT = 'inconsistent'
STARTING = 'starting'
NO_GUEST_FIGURES = 'no-guest-figures'
NOT_RUNNING = 'not-running'
UNRESPONSIVE = 'unresponsive'
ERROR = 'error'
STATES = (OK, STALE, PAUSED, NO_STATS_PERIOD, BALLOON_DISABLED, STARTING,
          NO_GUEST_DRIVER, NO_GUEST_FIGURES, NOT_RUNNING, UNRESPONSIVE,
          ERROR, NOT_BOOTED, INCONSISTENT)

# Figures only the guest's balloon driver reports.
GUEST_KEYS = ('unused', 'available', 'usable')



def _ago(seconds: float) -> str:
    return f'{seconds:.0f}s ago'


def classify(active: bool, balloon, stats: dict, now: float,
             monitor_busy: float | None = None,
             suspended: str | None = None,
             period_changed_at: float | None = None,
             started_at: float | None = None,
             start_grace: float = 0,
             remedy: str | None = None,
             console: tuple[str, bool] | None = None) -> tuple[str, str]:
    """(stats_state, reason) of one guest: the first row that applies.

    ``balloon`` is the LibvirtConfigMemoryBalloon of the live XML, or None
    where the domain has no balloon element. ``monitor_busy`` is set (in
    seconds) when libvirt skipped the guest because its QEMU monitor was
    busy; ``suspended`` is 'paused' or 'pmsuspended' for a guest whose
    vCPUs do not run; ``period_changed_at`` is when its period was last
    changed, where known (epoch seconds); ``started_at`` when this run of
    the guest started, where known (epoch seconds); ``start_grace`` how
    long after its start a guest that never reported is still booting
    (seconds; [libvirt] mem_stats_start_grace_seconds); ``remedy`` how a
    guest with its balloon disabled gets statistics, as what decides its
    period says (stats_period.disabled_remedy; default: the option);
    ``console`` (the file its serial console is logged to, whether it is
    still empty) where that tells anything: not for a guest that may
    write nothing there (Windows), nor where the file could not be read.

    ====================================  ==================  ============
    the guest                             state               figures
    ====================================  ==================  ============
    not running                           not-running         none
    QEMU monitor busy (stopped, hung)     unresponsive        host's only
    no balloon, or model none             balloon-disabled    rss only
    balloon without a period              no-stats-period     read once
    paused or suspended by itself (QEMU   paused              its last
    stops its statistics timer)                               report's
    never reported, and started under     starting            host's only
    the start grace or two periods ago
    (whichever is longer; where known)
    never reported, and its console       not-booted          host's only
    still empty: it never reached its
    kernel (KVM unusable, a kernel or
    disk that does not boot)
    never reported (last_update 0)        no-guest-driver     host's only
    reports, but with no guest figure     no-guest-figures    host's only
    (a driver that sends -1 for each)
    figures that contradict each other    inconsistent        its report's,
    (usable or unused above available:                        none derived
    a partial or stale report)                                from them
    last report (or the period change,    stale               its last
    if later) over two periods ago                            report's
    otherwise                             ok                  fresh
    ====================================  ==================  ============
    """
    return (_unable(active, balloon, monitor_busy, remedy) or
            _reports(balloon, stats, now, suspended, period_changed_at,
                     started_at, start_grace, console))


def _unable(active: bool, balloon, monitor_busy: float | None,
            remedy: str | None = None) -> tuple[str, str] | None:
    """The rows of a guest that cannot report now, or None."""
    if not active:
        return NOT_RUNNING, 'Guest is not running: start it to get figures.'
    if monitor_busy is not None:
        busy = (f'has been busy for {monitor_busy:.0f}s' if monitor_busy
                else 'was busy')
        return UNRESPONSIVE, (
            f"Guest's QEMU monitor {busy}, so libvirt skipped its figures: "
            'its QEMU process is stopped or hung (or a migration holds '
            'it); resume it if it was stopped (kill -CONT its QEMU '
            'process), else check its QEMU log; other guests are '
            'unaffected.')
    if balloon is None or balloon.model == 'none':
        what = 'has no memory balloon' if balloon is None else \
            'has its memory balloon disabled (model none)'
        remedy = remedy or ('set [libvirt] mem_stats_period_seconds above '
                            '0 and recreate it')
        return BALLOON_DISABLED, (
            f'Guest {what}: only host-side figures; {remedy}.')
    if balloon.period is None:
        return NO_STATS_PERIOD, (
            'Balloon has no statistics period: guest figures are read once '
            'and never refreshed; give it one with '
            f'"{hints.command("set-period", "SECONDS", "NAME")}".')
    return None


def _reports(balloon, stats: dict, now: float, suspended: str | None,
             period_changed_at: float | None,
             started_at: float | None, start_grace: float,
             console: tuple[str, bool] | None = None) -> tuple[str, str]:
    """The rows of a guest with a balloon and a period: what its reports
    say.
    """
    last = stats.get('last_update') or 0
    if suspended is not None:
        how = ('is paused' if suspended == 'paused' else
               'suspended itself (ACPI S3)')
        figures_age = f'last report {_ago(now - last)}' if last else \
            'no report yet'
        return PAUSED, (
            f'Guest {how}, and QEMU does not refresh statistics while its '
            f'vCPUs are stopped ({figures_age}): resume it for fresh '
            'figures.')
    grace = max(start_grace, 2 * balloon.period)
    if not last and started_at is not None and now - started_at < grace:
        return STARTING, (
            f'Guest started {_ago(max(0, now - started_at))} and has not '
            'reported yet: it reports within one period once its balloon '
            f'driver loads (no-guest-driver if it has not {grace:.0f}s '
            'after its start).')
    if not last and console is not None and console[1]:
        since = (f' {max(0, now - started_at):.0f}s after its start'
                 if started_at is not None else '')
        return NOT_BOOTED, (
            f'Guest never reached its kernel: its console {console[0]} is '
            f'still empty{since}, so its balloon driver never had a '
            'chance: check that it can boot (KVM usable on this host, or '
            'virt_type qemu; its kernel, disk and command line).')
    if not last:
        return NO_GUEST_DRIVER, (
            'Guest never reported: load virtio_balloon (Linux) or install '
            'the virtio balloon driver (Windows); if it boots slowly, '
            'raise [libvirt] mem_stats_start_grace_seconds.')
    age = max(0, now - last)
    if not any(key in stats for key in GUEST_KEYS):
        return NO_GUEST_FIGURES, (
            f'Guest reports (last {_ago(age)}) but gives none of its '
            'figures: update its balloon driver (some virtio-win versions '
            'send none).')
    contradiction = contradicts(stats)
    if contradiction is not None:
        return INCONSISTENT, (
            f'Guest reported figures that contradict each other '
            f'({contradiction}; last report {_ago(age)}): a partial or '
            'stale report, from which no usage is derived; it clears '
            'itself at its next consistent report, else its balloon driver '
            'is at fault.')
    changed = period_changed_at is not None and period_changed_at > last
    since = max(0, now - period_changed_at) if changed else age
    if since > 2 * balloon.period:
        return STALE, (
            f'Last report {_ago(age)}, over twice the {balloon.period}s '
            "period: the guest's balloon driver stopped reporting.")
    if changed:
        return OK, (f'Period changed to {balloon.period}s {_ago(since)}; '
                    f'last report {_ago(age)}, under the previous period.')
    return OK, f'Reported {_ago(age)}; period {balloon.period}s.'


def contradicts(stats: dict) -> str | None:
    """How a guest's figures contradict each other (what it can use, or
    leaves unused, above what it has: libvirt's KiB), or None.
    """
    available = stats.get('available')
    if available is None:
        return None
    for key in ('usable', 'unused'):
        value = stats.get(key)
        if value is not None and value > available:
            return (f'{key} {value // 1024} MiB above available '
                    f'{available // 1024} MiB')
    return None


def period_may_have_changed(period: int | None, seen: int, update: int,
                            read_at: float, now: float) -> bool:
    """Whether a guest's reports no longer fit the period cached for it.

    ``seen`` is the guest's ``last_update`` at the previous poll, ``update``
    the current one (0: never reported), ``read_at`` when its XML was last
    read, ``now`` the time of this poll.

    ======================================  ================================
    the guest                               re-read its XML?
    ======================================  ================================
    never reported                          no: nothing to compare with
    no period cached, reports again         yes: someone set a period
    reported again, off the cadence (the    yes: the period was shortened
    gap is not a whole number of periods,   or changed
    give or take a second and 5 %)
    last report overdue (over 1.5 periods   yes, once (if the XML was read
    and a second old)                       before it was overdue): the
                                            period was lengthened or
                                            stopped, else it is stale
    anything else                           no
    ======================================  ================================
    """
    if not update:
        return False
    if period is None:
        return update != seen
    if seen and update != seen:
        gap = update - seen
        periods = max(1, round(gap / period))
        if abs(gap - periods * period) > 1 + 0.05 * gap:
            return True
    overdue_at = update + 1.5 * period + 1
    return now > overdue_at and read_at <= overdue_at
