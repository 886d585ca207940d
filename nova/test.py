"""Base classes for nova-libvirt's tests.

``TestCase`` gives every test a clean configuration (``self.flags``), the
one XML comparison (``assertXmlEqual``) and a check that a complete domain
validates against libvirt's own RelaxNG schema.
"""

import functools
import logging
import os
import time

import fixtures
from lxml import etree
from oslo_config import fixture as config_fixture
from oslotest import base

from nova import hints
import nova.conf
from nova.tests.unit import matchers

CONF = nova.conf.CONF

DOMAIN_SCHEMA = '/usr/share/libvirt/schemas/domain.rng'


@functools.lru_cache(maxsize=None)
def _domain_schema() -> etree.RelaxNG:
    # Missing schemas are a missing install step (bindep.txt), not a skip.
    if not os.path.exists(DOMAIN_SCHEMA):
        raise AssertionError(
            f'{DOMAIN_SCHEMA} is missing: install the libvirt packages '
            'listed in bindep.txt.')
    return etree.RelaxNG(etree.parse(DOMAIN_SCHEMA))


class TestCase(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.useFixture(config_fixture.Config(CONF))
        # how advice names the command: each test as a process starts
        hints.reset()
        self.addCleanup(hints.reset)

    def _fake_logs(self):
        """Each test's log is captured (and shown with its failure), at
        INFO unless OS_DEBUG asks for DEBUG: oslotest's default sends every
        library's DEBUG lines (asyncio, stevedore) to the suite's output.
        """
        debug = os.environ.get('OS_DEBUG', '').lower() in ('1', 'true',
                                                           'yes', 'debug')
        self.log_fixture = self.useFixture(fixtures.FakeLogger(
            format='%(levelname)8s [%(name)s] %(message)s',
            level=logging.DEBUG if debug else logging.INFO,
            nuke_handlers=True))

    def flags(self, group=None, **kw):
        """Override options for this test only, e.g. flags(virt_type=...)."""
        for name, value in kw.items():
            CONF.set_override(name, value, group)

    def wait_for(self, what: str, check, timeout: float,
                 interval: float = 0.5):
        """Poll ``check()`` until it returns a true value; return it. Fails
        after ``timeout`` seconds, naming ``what`` (a bound against a hang,
        not a timing test).
        """
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise self.failureException(
                    f'timed out after {timeout}s waiting for {what}')
            time.sleep(interval)

    def assertXmlEqual(self, expected, actual):
        self.assertThat(actual, matchers.XMLMatches(expected))

    def assertValidDomain(self, xml: str):
        """``xml`` must validate against libvirt's domain.rng."""
        schema = _domain_schema()
        doc = etree.fromstring(xml.encode())
        if not schema.validate(doc):
            self.fail('Domain XML does not validate against %s: %s\n%s' % (
                DOMAIN_SCHEMA, schema.error_log.last_error, xml))

    def get_one_device(self, guest, cls):
        """The single device of class ``cls``: fails on none or several."""
        found = guest.get_device(cls)
        self.assertEqual(1, len(found),
                         f'expected exactly one {cls.__name__}, found '
                         f'{len(found)} in {guest.to_xml()}')
        return found[0]
