"""Tests for nova.exporter.encoding: the same bytes as prometheus_client."""

import functools
import math

from prometheus_client import core
from prometheus_client import exposition
from prometheus_client.openmetrics import exposition as om_exposition
from prometheus_client.samples import Sample
from prometheus_client.samples import Timestamp

from nova import test
from nova.exporter import encoding
from nova.exporter import metrics
from nova.tests.fixtures import exporter as fakeexporter
from nova.virt.libvirt import config

# What Prometheus servers and curl send, and what the library accepts.
ACCEPTS = (
    '',
    '*/*',
    'text/plain;version=0.0.4;q=0.5,*/*;q=0.1',
    'application/openmetrics-text;version=1.0.0,application/openmetrics-'
    'text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1',
    'application/openmetrics-text',
    'application/openmetrics-text;version=1.0.0;escaping=allow-utf-8',
    'text/plain;version=1.0.0;escaping=underscores',
)


def _registry(families):
    return fakeexporter.Fixed(families)


def _poll_families():
    """A poll's families with every kind of row and awkward values."""
    raw = dict(fakeexporter.RAW, rss=2 ** 40, usable=0)
    rows = [
        fakeexporter.make_row('ok-1', 'ok', raw),
        fakeexporter.make_row('q"uote\\back\nline', 'ok', fakeexporter.RAW),
        fakeexporter.make_row('ünï', 'stale', {'actual': 1, 'rss': 7}),
        fakeexporter.make_row('off', 'not-running', period=None),
    ]
    rows[0].metadata = config.LibvirtConfigGuestMetaNovaInstance(
        name='Web "1"\n', owner=config.LibvirtConfigGuestMetaNovaOwner(
            userid='u1', username='al\\ice', projectid='p1',
            projectname='web'))
    families = metrics.families(rows, {})
    return families + metrics.host_families(True, 0.0123)


class EncodingTest(test.TestCase):

    def _same(self, families, accept):
        chosen, _ = exposition.choose_encoder(accept)
        fast = encoding.encoder_for(chosen)
        self.assertEqual(chosen(_registry(families)),
                         fast(_registry(families)), accept)
        return fast

    def test_a_poll_the_same_in_every_format(self):
        families = _poll_families()
        for accept in ACCEPTS:
            fast = self._same(families, accept)
            self.assertIsInstance(fast, functools.partial, accept)
            self.assertIs(encoding._fast, fast.func)

    def test_special_values(self):
        gauge = core.GaugeMetricFamily('g', 'help \\ "x"\ny',
                                       labels=['a'])
        for index, value in enumerate((math.nan, math.inf, -math.inf, 0,
                                       -0.0, 1e-9, 123456789012, 0.1,
                                       True)):
            gauge.add_metric([str(index)], value)
        counter = core.CounterMetricFamily('c', 'a counter', labels=['a'])
        counter.add_metric(['x'], 3)
        state = core.StateSetMetricFamily('s', 'states', labels=['a'])
        state.add_metric(['x'], {'on': True, 'off': False})
        info = core.InfoMetricFamily('i', 'an info', labels=['a'])
        info.add_metric(['x'], {'version': '1'})
        unlabelled = core.GaugeMetricFamily('u', 'no labels', value=2)
        for accept in ACCEPTS:
            self._same([gauge, counter, state, info, unlabelled], accept)

    def test_what_the_fast_path_leaves_to_the_library(self):
        # Each of these is written by prometheus_client, byte for byte.
        with_unit = core.GaugeMetricFamily('g_bytes', 'x', unit='bytes',
                                           labels=['a'])
        with_unit.add_metric(['x'], 1)
        colon = core.GaugeMetricFamily('ns:g', 'x', labels=['a'])
        colon.add_metric(['x'], 1)
        odd_label = core.GaugeMetricFamily('g', 'x', labels=['a.b'])
        odd_label.add_metric(['x'], 1)
        stamped = core.GaugeMetricFamily('g', 'x', labels=['a'])
        stamped.samples.append(Sample('g', {'a': 'x'}, 1,
                                      Timestamp(1800000000, 5)))
        created = core.CounterMetricFamily('c', 'x', labels=['a'],
                                           created=1800000000)
        created.add_metric(['x'], 1, created=1800000000)
        for family in (with_unit, colon, odd_label, stamped, created):
            for accept in ACCEPTS:
                self._same([family], accept)

    def test_escapings_that_rewrite_names_keep_the_library(self):
        for escaping in ('dots', 'values'):
            chosen, _ = exposition.choose_encoder(
                f'application/openmetrics-text;version=1.0.0;'
                f'escaping={escaping}')
            self.assertIs(chosen, encoding.encoder_for(chosen))
        plain = functools.partial(om_exposition.generate_latest,
                                  escaping=om_exposition.UNDERSCORES)
        self.assertIsNot(plain, encoding.encoder_for(plain))
