"""The sample configuration and the option listing."""

import os

import fixtures
from oslo_config import generator

from nova import test
from nova.conf import libvirt
from nova.conf import opts


class ListOptsTest(test.TestCase):

    def test_groups(self):
        listed = {getattr(g, 'name', g): [o.dest for o in group_opts]
                  for g, group_opts in opts.list_opts()}
        self.assertEqual(['virt_type', 'connection_uri',
                          'mem_stats_period_seconds',
                          'mem_free_page_reporting',
                          'mem_stats_start_grace_seconds',
                          'mem_stats_keep_unresponsive_periods',
                          'mem_stats_poll_timeout', 'mem_stats_poll_workers'],
                         listed['libvirt'])
        self.assertIn('state_path', listed['DEFAULT'])

    def test_sample_config_documents_option(self):
        out = os.path.join(self.useFixture(fixtures.TempDir()).path,
                           'nova.conf.sample')
        root = os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
        generator.main(['--config-file', os.path.join(
            root, 'etc', 'nova', 'nova-config-generator.conf'),
            '--output-file', out])
        with open(out) as f:
            sample = f.read()
        self.assertIn('[libvirt]', sample)
        self.assertIn('#mem_stats_period_seconds = 10', sample)
        self.assertIn('# Maximum value: %d' % libvirt.INT_MAX, sample)
        self.assertIn('disables memory usage statistics', sample)
        # the shipped sample is this one: regenerate it when an option
        # changes (tox -e genconfig)
        with open(os.path.join(root, 'etc', 'nova',
                               'nova-libvirt.conf.sample')) as f:
            self.assertEqual(sample, f.read())
