"""Nova's instance metadata on a real guest, as Ceilometer reads it."""

import io
import json
import os

import fixtures

from nova.cmd import libvirt as cmd
from nova.tests.functional.libvirt import base
from nova.virt.libvirt import config as vconfig

USER_ID = '5f0c3e1a9b2d4c6e8f7a1b2c3d4e5f60'
PROJECT_ID = '0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9'


class MetadataTest(base.RealQemuTestCase):

    def run_cmd(self, *argv):
        conf = os.path.join(self.state_path, 'meta.conf')
        with open(conf, 'w') as f:
            f.write(f'[DEFAULT]\nstate_path = {self.state_path}\n'
                    f'instances_path = {self.state_path}/instances\n'
                    '[libvirt]\nvirt_type = qemu\n'
                    f'connection_uri = {self.embed_uri}\n'
                    'mem_stats_period_seconds = 2\n')
        out, err = io.StringIO(), io.StringIO()
        with fixtures.MonkeyPatch('sys.stdout', out), \
                fixtures.MonkeyPatch('sys.stderr', err):
            rc = cmd.main(['--config-file', conf, *argv])
        self.assertEqual(0, rc, err.getvalue())
        return out.getvalue()

    def test_boot_carries_metadata_and_memstats_shows_it(self):
        image = self.images['balloon']
        self.addCleanup(self._delete_and_check, 'ft-meta')
        self.run_cmd('boot', 'ft-meta', '--kernel', image.kernel_path,
                     '--initrd', image.ramdisk_path, '--cmdline',
                     image.os_command_line, '--display-name', 'Web server',
                     '--project-name', 'web', '--project-id', PROJECT_ID,
                     '--user-name', 'alice', '--user-id', USER_ID,
                     '--flavor-name', 'm1.tiny', '--flavor-id', '1')
        guest = self.driver.host.get_guest('ft-meta')
        # virDomainGetMetadata gives the element without its namespace,
        # as Ceilometer reads it.
        element = vconfig.parse_xml(guest.get_metadata(vconfig.NOVA_NS))
        self.assertEqual('instance', element.tag)
        self.assertEqual(
            {'name': 'Web server', 'flavor': ('m1.tiny', '1'),
             'sizes': ('256', '0', '0', '0', '1'),
             'user': ('alice', USER_ID), 'project': ('web', PROJECT_ID)},
            {'name': element.findtext('name'),
             'flavor': (element.find('flavor').get('name'),
                        element.find('flavor').get('id')),
             'sizes': tuple(element.findtext(f'flavor/{size}') for size in
                            ('memory', 'disk', 'swap', 'ephemeral',
                             'vcpus')),
             'user': (element.findtext('owner/user'),
                      element.find('owner/user').get('uuid')),
             'project': (element.findtext('owner/project'),
                         element.find('owner/project').get('uuid'))})
        self.assertTrue(element.findtext('creationTime'))
        self.assertIsNone(guest.get_metadata('http://example.org/none'))
        # and the domain XML, namespaced, parses back into our classes
        meta = vconfig.domain_facts(guest.get_xml_desc()).instance
        self.assertEqual(('Web server', 'alice'),
                         (meta.name, meta.owner.username))
        # libvirt filled in the architecture Ceilometer also reads
        live = vconfig.parse_xml(guest.get_xml_desc())
        self.assertTrue(live.find('os/type').get('arch'))

        rows = json.loads(self.run_cmd('memstats', 'ft-meta', '--format',
                                       'json'))
        self.assertEqual(('Web server', 'web'),
                         (rows[0]['display_name'], rows[0]['project']))
        table = self.run_cmd('memstats', 'ft-meta')
        self.assertIn('Web server', table)
