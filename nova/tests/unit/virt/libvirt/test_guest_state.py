"""Tests for nova.virt.libvirt.guest_state: each state from its inputs,
and when a guest's reports no longer fit its cached period.
"""

import testscenarios

from nova import test
from nova.tests.fixtures.memstats import FULL
from nova.tests.fixtures.memstats import NOW
from nova.virt.libvirt import config as vconfig
from nova.virt.libvirt import guest_state

load_tests = testscenarios.load_tests_apply_scenarios


def _balloon(model='virtio', period=2):
    return vconfig.LibvirtConfigMemoryBalloon(model=model, period=period)


class ClassifyTest(test.TestCase):
    """Each state, from the inputs that produce it."""

    scenarios = [
        ('ok', dict(active=True, balloon=_balloon(period=2), stats=FULL,
                    state='ok', words='period 2s')),
        ('ok_at_twice_period', dict(
            active=True, balloon=_balloon(period=2),
            stats=dict(FULL, last_update=NOW - 4), state='ok',
            words='4s ago')),
        ('stale', dict(active=True, balloon=_balloon(period=2),
                       stats=dict(FULL, last_update=NOW - 5),
                       state='stale', words='5s ago, over twice the 2s')),
        ('stale_long_period', dict(
            active=True, balloon=_balloon(period=10),
            stats=dict(FULL, last_update=NOW - 21), state='stale',
            words='twice the 10s')),
        ('no_stats_period', dict(active=True, balloon=_balloon(period=None),
                                 stats=FULL, state='no-stats-period',
                                 words='never refreshed')),
        ('balloon_none', dict(active=True, balloon=_balloon('none', None),
                              stats={'rss': 1}, state='balloon-disabled',
                              words='model none')),
        ('no_balloon_element', dict(active=True, balloon=None,
                                    stats={'rss': 1},
                                    state='balloon-disabled',
                                    words='has no memory balloon')),
        ('never_reported', dict(
            active=True, balloon=_balloon(period=10),
            stats={'actual': 262144, 'last_update': 0, 'rss': 1},
            state='no-guest-driver', words='virtio_balloon')),
        ('never_booted', dict(
            active=True, balloon=_balloon(period=10),
            stats={'actual': 262144, 'last_update': 0, 'rss': 1},
            console=('/i/console.log', True), state='not-booted',
            words='never reached its kernel: its console /i/console.log '
                  'is still empty')),
        ('never_reported_console_written', dict(
            active=True, balloon=_balloon(period=10),
            stats={'actual': 262144, 'last_update': 0, 'rss': 1},
            console=('/i/console.log', False), state='no-guest-driver',
            words='virtio_balloon')),
        ('no_last_update_key', dict(
            active=True, balloon=_balloon(period=10),
            stats={'actual': 1, 'rss': 1}, state='no-guest-driver',
            words='Windows')),
        ('reports_without_guest_figures', dict(
            # virtio-win drivers that send -1 for every figure: libvirt
            # omits them, last_update still advances
            active=True, balloon=_balloon(period=10),
            stats={'actual': 1, 'last_update': NOW - 4, 'rss': 1},
            state='no-guest-figures', words='last 4s ago')),
        ('inconsistent', dict(
            # a stale report where usable exceeds available (lf-edge/eve)
            active=True, balloon=_balloon(period=2),
            stats=dict(FULL, usable=300 * 1024, available=256 * 1024),
            state='inconsistent',
            words='usable 300 MiB above available 256 MiB')),
        ('inconsistent_unused', dict(
            active=True, balloon=_balloon(period=2),
            stats=dict(FULL, unused=300 * 1024, available=256 * 1024),
            state='inconsistent', words='unused 300 MiB above available')),
        ('paused', dict(
            active=True, balloon=_balloon(period=2),
            stats=dict(FULL, last_update=NOW - 600), suspended='paused',
            state='paused', words='is paused, and QEMU does not refresh '
                                  'statistics while its vCPUs are stopped '
                                  '(last report 600s ago)')),
        ('paused_never_reported', dict(
            active=True, balloon=_balloon(period=2),
            stats={'actual': 1, 'rss': 1}, suspended='paused',
            state='paused', words='no report yet')),
        ('suspended_by_guest', dict(
            active=True, balloon=_balloon(period=2),
            stats=dict(FULL, last_update=NOW - 60), suspended='pmsuspended',
            state='paused', words='suspended itself')),
        ('paused_unresponsive', dict(
            active=True, balloon=_balloon(period=2), stats={'actual': 1},
            busy=40.0, suspended='paused', state='unresponsive',
            words='busy for 40s')),
        ('paused_without_period', dict(
            active=True, balloon=_balloon(period=None), stats=FULL,
            suspended='paused', state='no-stats-period',
            words='nova-libvirt set-period SECONDS NAME')),
        ('period_just_changed', dict(
            # set-period 10 then 2: the last report came under period 10
            active=True, balloon=_balloon(period=2),
            stats=dict(FULL, last_update=NOW - 12), changed=NOW - 1,
            state='ok', words='Period changed to 2s 1s ago; last report '
                              '12s ago')),
        ('period_changed_then_silent', dict(
            active=True, balloon=_balloon(period=2),
            stats=dict(FULL, last_update=NOW - 12), changed=NOW - 5,
            state='stale', words='12s ago, over twice the 2s')),
        ('period_change_older_than_report', dict(
            active=True, balloon=_balloon(period=2),
            stats=dict(FULL, last_update=NOW - 1), changed=NOW - 30,
            state='ok', words='Reported 1s ago')),
        ('unresponsive', dict(
            active=True, balloon=_balloon(period=2),
            stats={'actual': 262144}, busy=3.003, state='unresponsive',
            words='monitor has been busy for 3s')),
        ('unresponsive_beats_disabled', dict(
            active=True, balloon=_balloon('none', None),
            stats={'actual': 1}, busy=0.0, state='unresponsive',
            words='monitor was busy')),
        ('not_running', dict(active=False, balloon=None, stats={},
                             state='not-running', words='not running')),
        ('not_running_beats_balloon', dict(
            active=False, balloon=_balloon(), stats=FULL,
            state='not-running', words='start it')),
    ]

    busy = suspended = changed = console = None

    def test_classify(self):
        state, reason = guest_state.classify(self.active, self.balloon,
                                          self.stats, NOW, self.busy,
                                          self.suspended, self.changed,
                                          console=self.console)
        self.assertEqual(self.state, state)
        self.assertIn(self.words, reason)
        self.assertIn(state, guest_state.STATES)
        self.assertEqual(1, len(reason.splitlines()))


class PeriodMayHaveChangedTest(test.TestCase):
    """When the collector re-reads a guest's XML for its period."""

    scenarios = [
        # (cached period, seen, update, read_at, now) -> re-read?
        ('never_reported', dict(args=(10, 0, 0, NOW, NOW), want=False)),
        ('on_cadence', dict(args=(10, NOW - 10, NOW, NOW - 10, NOW),
                            want=False)),
        ('on_cadence_a_second_late', dict(
            args=(10, NOW - 11, NOW, NOW - 11, NOW), want=False)),
        ('several_periods_between_polls', dict(
            args=(10, NOW - 30, NOW, NOW - 30, NOW + 1), want=False)),
        ('same_report_within_period', dict(
            args=(10, NOW, NOW, NOW, NOW + 9), want=False)),
        ('shortened_30_to_2', dict(args=(30, NOW - 12, NOW, NOW - 12, NOW),
                                   want=True)),
        ('lengthened_overdue', dict(args=(2, NOW, NOW, NOW, NOW + 5),
                                    want=True)),
        ('overdue_read_since', dict(args=(2, NOW, NOW, NOW + 5, NOW + 60),
                                    want=False)),
        ('no_period_reports_again', dict(
            args=(None, NOW - 50, NOW, NOW - 50, NOW), want=True)),
        ('no_period_same_report', dict(
            args=(None, NOW, NOW, NOW, NOW + 500), want=False)),
    ]

    def test_decision(self):
        self.assertEqual(self.want,
                         guest_state.period_may_have_changed(*self.args))


class StartGraceTest(test.TestCase):
    """A guest that never reported is starting for the grace after its
    start, or two periods if longer; then it has no guest driver.
    """

    scenarios = [
        # (seconds since start, period, grace) -> state
        ('within_grace', dict(since=59, period=2, grace=60,
                              state='starting', words='not 60s after')),
        ('grace_over', dict(since=60, period=2, grace=60,
                            state='no-guest-driver',
                            words='mem_stats_start_grace_seconds')),
        ('two_periods_longer', dict(since=100, period=60, grace=30,
                                    state='starting', words='120s')),
        ('no_grace_two_periods', dict(since=3, period=2, grace=0,
                                      state='starting', words='4s')),
        ('no_grace_over', dict(since=4, period=2, grace=0,
                               state='no-guest-driver',
                               words='virtio_balloon')),
    ]

    def test_grace(self):
        state, reason = guest_state.classify(
            True, _balloon(period=self.period), {'actual': 1}, NOW,
            started_at=NOW - self.since, start_grace=self.grace)
        self.assertEqual(self.state, state, reason)
        self.assertIn(self.words, reason)

    def test_unknown_start_is_judged_at_once(self):
        state, _ = guest_state.classify(True, _balloon(), {'actual': 1}, NOW,
                                        start_grace=600)
        self.assertEqual('no-guest-driver', state)
