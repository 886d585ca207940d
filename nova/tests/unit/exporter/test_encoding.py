"""Tests for nova.exporter.encoding: the same bytes as prometheus_client."""

import gzip
import math

import fixtures
import hypothesis
from hypothesis import strategies as st
from prometheus_client import core
from prometheus_client import exposition
from prometheus_client import utils as prom_utils
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

    def setUp(self):
        super().setUp()
        # Which bodies the fast path wrote (the rest: the library).
        self.fast = []
        real = encoding._encode

        def spy(*args):
            body = real(*args)
            self.fast.append(body)
            return body
        self.useFixture(fixtures.MockPatchObject(encoding, '_encode', spy))

    def _same(self, families, accept, names=()):
        """encode() gives the library's bytes and content type; whether
        its fast path wrote them.
        """
        chosen, content_type = exposition.choose_encoder(accept)
        expected = chosen(_registry(
            encoding.wanted(families, names) if names else families))
        self.fast.clear()
        fmt = encoding.negotiate(accept)
        body = encoding.encode(families, fmt, names)
        self.assertEqual(expected, body, accept)
        self.assertEqual(content_type, fmt.content_type, accept)
        return bool(self.fast)

    def test_a_poll_the_same_in_every_format_by_the_fast_path(self):
        # Fails if prometheus_client's choice (its content types) or its
        # output changed under the fast path.
        families = _poll_families()
        for accept in ACCEPTS:
            self.assertTrue(self._same(families, accept), accept)

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
        families = _poll_families()
        for escaping in ('dots', 'values'):
            self.assertFalse(self._same(
                families, 'application/openmetrics-text;version=1.0.0;'
                          f'escaping={escaping}'), escaping)
        # a future format version: the library's
        self.assertIsNone(encoding._fast_format(
            'application/openmetrics-text; version=2.0.0; charset=utf-8'))

    def test_name_filter_and_gzip(self):
        families = _poll_families()
        names = ('libvirt_up', 'libvirt_domain_memory_stats_rss_bytes')
        for accept in ACCEPTS:
            self.assertTrue(self._same(families, accept, names))
        body = encoding.encode(families, encoding.negotiate('', 'gzip'),
                               names)
        plain = encoding.encode(families, encoding.negotiate(''), names)
        self.assertEqual(plain, gzip.decompress(body))
        self.assertIn(b'libvirt_up ', plain)
        self.assertNotIn(b'available_bytes', plain)


class GoFloatTest(test.TestCase):
    """go_float writes what prometheus_client's floatToGoString does."""

    @hypothesis.settings(max_examples=2000, deadline=None)
    @hypothesis.given(st.one_of(
        st.integers(-2 ** 64, 2 ** 64), st.integers(0, 2 ** 53 + 10),
        st.integers(0, 10 ** 7), st.floats(allow_nan=True),
        st.booleans()))
    def test_same_text(self, value):
        self.assertEqual(prom_utils.floatToGoString(value),
                         encoding.go_float(value))

    def test_edges(self):
        for value in (0, 1, 999999, 1000000, 10 ** 15, 2 ** 53 - 1, 2 ** 53,
                      10 ** 16, 123456789012, 536870912, -1, -0.0, True):
            self.assertEqual(prom_utils.floatToGoString(value),
                             encoding.go_float(value), value)


class NegotiateTest(test.TestCase):

    def test_gzip_by_q_values(self):
        for header, wanted in (('gzip', True), ('deflate, gzip;q=0.5', True),
                               ('gzip;q=0', False), ('*', True),
                               ('*;q=0', False), ('br', False), ('', False),
                               ('GZIP', True), ('gzip;q=x', False),
                               ('notgzip', False)):
            self.assertEqual(wanted, encoding.gzip_wanted(header), header)

    def test_any_accept_header_gives_one_of_a_few_formats(self):
        # prometheus_client's choose_encoder fails on a version that is
        # not numbers (a 500 here once); Go's client falls back to text
        for accept in ('text/plain; version=x', 'text/plain; version=1.a',
                       'application/openmetrics-text; version=x.y',
                       ';;;,=,', 'text/plain; version=',
                       'application/openmetrics-text; version=0.0.1'):
            self.assertEqual(encoding.negotiate(''),
                             encoding.negotiate(accept), accept)
        # versions past 1.0.0 are 1.0.0 (or 2.0.0): one body for them all
        seen = {encoding.negotiate(
            f'application/openmetrics-text; version=1.0.0.{i}')
            for i in range(100)}
        self.assertEqual({encoding.negotiate(
            'application/openmetrics-text; version=1.0.0; '
            'escaping=underscores')}, seen)
        # the closed set: formats x escapings x gzip, a few dozen
        self.assertEqual(
            'application/openmetrics-text; version=2.0.0; charset=utf-8; '
            'escaping=dots', encoding.negotiate(
                'application/openmetrics-text;version=2.7;escaping=dots'
            ).content_type)

    def test_equal_requests_equal_formats(self):
        a = encoding.negotiate('text/plain;version=0.0.4', 'gzip')
        b = encoding.negotiate('text/plain;version=0.0.4', 'gzip, br')
        self.assertEqual(a, b)
        self.assertNotEqual(a, encoding.negotiate('text/plain', ''))


class ScaleCountTest(test.TestCase):
    """The encode's work per guest does not grow with the guests: at 200
    (and 400) guests with every figure, each guest's label set is written
    once per body and its samples are a fixed number, counted, not timed
    (tools/bench/scale.py times it up to 4,096).
    """

    def _work(self, guests):
        from nova.exporter import metrics
        from nova.tests.fixtures import exporter as fakeexporter
        raw = dict(fakeexporter.RAW, hugetlb_pgalloc=1, hugetlb_pgfail=0)
        rows = [fakeexporter.make_row(f'g{i}', 'ok', raw)
                for i in range(guests)]
        families = metrics.families(rows)
        labels = self.useFixture(fixtures.MockPatchObject(
            encoding, '_labels', wraps=encoding._labels)).mock
        body = encoding.encode(families, encoding.negotiate(''))
        samples = sum(len(f.samples) for f in families)
        return labels.call_count, samples, body.count(b'\n')

    def test_a_warm_scrape_writes_no_label_set_again(self):
        # the next scrape's label sets are the dicts kept by
        # metrics.families; the body written with the texts of the one
        # before is the same, and writes none of them again
        from nova.exporter import metrics
        from nova.tests.fixtures import exporter as fakeexporter
        rows = [fakeexporter.make_row(f'g{i}', 'ok', fakeexporter.RAW)
                for i in range(200)]
        kept, texts = {}, {}
        fmt = encoding.negotiate('application/openmetrics-text;'
                                 'version=1.0.0')
        first = encoding.encode(metrics.families(rows, kept), fmt, (), texts)
        rows[7] = fakeexporter.make_row('g7', 'stale', fakeexporter.RAW)
        labels = self.useFixture(fixtures.MockPatchObject(
            encoding, '_labels', wraps=encoding._labels)).mock
        families = metrics.families(rows, kept)
        second = encoding.encode(families, fmt, (), texts)
        self.assertEqual(0, labels.call_count)
        self.assertEqual(encoding.encode(families, fmt), second)
        self.assertEqual(first.replace(
            b'domain="g7",libvirt_domain_memory_stats_state="ok"} 1',
            b'domain="g7",libvirt_domain_memory_stats_state="ok"} 0').replace(
            b'domain="g7",libvirt_domain_memory_stats_state="stale"} 0',
            b'domain="g7",libvirt_domain_memory_stats_state="stale"} 1'),
            second)

    def test_encode_work_per_guest(self):
        from nova.virt.libvirt import guest_state
        labels, samples, lines = self._work(200)
        # a guest's label set is written once for all its figures, and
        # each state of its state set once: not once per sample
        self.assertEqual(200 * (1 + len(guest_state.STATES)), labels)
        self.assertLessEqual(samples / 200, 40)
        # twice the guests, twice the work: no more per guest
        more = self._work(400)
        self.assertEqual((2 * labels, 2 * samples), more[:2])
