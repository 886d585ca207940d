"""Every case of doc/source/admin/bad-input.rst, run as the page says.

Cases that need real QEMU are run by the functional tests named in
FUNCTIONAL; this module checks that they do, and that the page and the
tests list the same cases.
"""

import os

import fixtures

from nova import exception
from nova.tests import doc_table
from nova.tests.fixtures import libvirt as fakelibvirt
from nova.tests.fixtures import memstats as fakememstats
from nova.tests.unit.cmd import base as cmd_base
from nova.virt.libvirt import host as libvirt_host
from nova.virt.libvirt import memstats

# case id -> the test module (functional, or of another part) that runs it
FUNCTIONAL = {
    'frozen-guest': 'nova/tests/functional/libvirt/test_bounded_poll.py',
    'root-in-use': 'nova/tests/functional/libvirt/test_bounded_poll.py',
    'demo-sighup': 'nova/tests/functional/test_demo.py',
    'exporter-bad-reload': 'nova/tests/functional/exporter/test_service.py',
    'exporter-log-file': 'nova/tests/functional/exporter/test_service.py',
    'exporter-port-in-use':
        'nova/tests/functional/exporter/test_service.py',
    'exporter-bad-flag': 'nova/tests/functional/exporter/test_service.py',
    'frozen-daemon-commands':
        'nova/tests/functional/operator/test_hangs.py',
}
for _case in ('http-unknown-path', 'http-method', 'http-no-credentials',
              'http-name-filter', 'http-idle-client', 'http-fd-exhaustion',
              'web-config-unknown'):
    FUNCTIONAL[_case] = 'nova/tests/functional/exporter/test_server.py'
for _case in ('web-config-refused', 'https-plain-client', 'http-rate-limit',
              'http-password-flood'):
    FUNCTIONAL[_case] = 'nova/tests/functional/test_web_config.py'

PERIOD_2 = '<memballoon model="virtio"><stats period="2"/></memballoon>'


class BadInputTest(cmd_base.CommandTestCase):

    def _conf(self, body, name='nova.conf'):
        return self._file(name, body)

    def _guest_xml(self, *extra, conf_body=''):
        conf = self._conf(conf_body)
        return self.run_cmd('--config-file', conf, 'guest-xml', *extra)

    def _check(self, case, result, **placeholders):
        rc, out, err = result
        if rc:
            self.assertEqual(1, len(err.splitlines()), err)
            self.assertRegex(err, r'^nova-libvirt(-exporter)?: error: ')
        doc_table.check(self, case, rc, err, **placeholders)
        return err

    # -- configuration

    def test_empty_value(self):
        for blank in ('', '   '):
            self._check('empty-value', self._guest_xml(
                '--disk', self.kernel,
                conf_body=f'[libvirt]\nmem_stats_period_seconds ={blank}\n'))

    def test_above_int_max(self):
        self._check('above-int-max', self._guest_xml(
            '--disk', self.kernel,
            conf_body='[libvirt]\nmem_stats_period_seconds = 2147483648\n'))

    def test_huge_value(self):
        err = self._check('huge-value', self._guest_xml(
            '--disk', self.kernel,
            conf_body='[libvirt]\nvirt_type = ' + 'x' * 100000 + '\n'))
        self.assertLess(len(err), 400)

    def test_relative_state_path(self):
        conf = self._conf('[DEFAULT]\nstate_path = nova\n')
        self._check('relative-state-path', self.run_cmd(
            '--config-file', conf, 'guest-xml', '--disk', self.kernel),
            FILE=conf)

    def test_config_is_directory(self):
        self._check('config-is-directory', self.run_cmd(
            '--config-file', self.tmp, 'guest-xml'))

    def test_config_endless(self):
        self._check('config-endless', self.run_cmd(
            '--config-file', '/dev/zero', 'guest-xml'))
        fifo = os.path.join(self.tmp, 'fifo.conf')
        os.mkfifo(fifo)
        self._check('config-endless', self.run_cmd(
            '--config-file', fifo, 'guest-xml'))

    def test_config_too_big(self):
        conf = self._conf('#' * (1024 * 1024 + 1))
        self._check('config-too-big', self.run_cmd(
            '--config-file', conf, 'guest-xml'))

    def test_config_not_utf8(self):
        path = os.path.join(self.tmp, 'latin1.conf')
        with open(path, 'wb') as f:
            f.write(b'[libvirt]\n# caf\xff\n')
        self._check('config-not-utf8', self.run_cmd(
            '--config-file', path, 'guest-xml'))

    def test_config_in_config_dir_checked_too(self):
        path = os.path.join(self.tmp, 'd')
        os.mkdir(path)
        with open(os.path.join(path, 'a.conf'), 'wb') as f:
            f.write(b'\xff')
        self._check('config-not-utf8', self.run_cmd(
            '--config-dir', path, 'guest-xml'))

    def test_config_unreadable(self):
        # As root every file is readable: refuse the open as the kernel
        # would for another user.
        denied = PermissionError(13, 'Permission denied')
        self.useFixture(fixtures.MockPatch('nova.readfile.read',
                                           side_effect=denied))
        self._check('config-unreadable', self.run_cmd(
            '--config-file', self._conf('[libvirt]\n'), 'guest-xml'))

    def test_misspelt_option(self):
        rc, out, err = self._guest_xml(
            '--disk', self.kernel,
            conf_body='[libvirt]\nmem_stats_period = 5\n')
        doc_table.check(self, 'misspelt-option', rc, err)
        self.assertTrue(err.startswith('nova-libvirt: warning: '), err)
        self.assertEqual(1, len(err.splitlines()), err)
        self.assertIn('<stats period="10"/>', out)  # the default, kept

    def test_wrong_section(self):
        rc, out, err = self._guest_xml(
            '--disk', self.kernel,
            conf_body='[DEFAULT]\nmem_stats_period_seconds = 5\n')
        doc_table.check(self, 'wrong-section', rc, err)
        self.assertEqual(1, len(err.splitlines()), err)

    def test_unknown_section(self):
        rc, out, err = self._guest_xml(
            '--disk', self.kernel,
            conf_body='[libvrt]\nmem_stats_period_seconds = 5\n')
        doc_table.check(self, 'unknown-section', rc, err)
        self.assertEqual(1, len(err.splitlines()), err)

    def test_a_compute_nodes_nova_conf_is_read_quietly(self):
        # Nova 34's own options, and those of the libraries it configures,
        # are Nova's business: no warning; ours and a misspelt one still
        # count.
        rc, out, err = self._guest_xml(
            '--disk', self.kernel, conf_body="""
[DEFAULT]
transport_url = rabbit://nova:secret@controller:5672/
my_ip = 10.0.0.31
debug = true
[api]
auth_strategy = keystone
[keystone_authtoken]
www_authenticate_uri = http://controller:5000/
memcached_servers = controller:11211
auth_type = password
[placement]
region_name = RegionOne
[libvirt]
virt_type = qemu
images_type = rbd
cpu_mode = host-passthrough
mem_stats_period_seconds = 5
mem_stats_period_second = 6
[oslo_concurrency]
lock_path = /var/lib/nova/tmp
[vnc]
enabled = true
""")
        self.assertEqual(0, rc, err)
        self.assertIn('<stats period="5"/>', out)
        self.assertEqual(1, len(err.splitlines()), err)
        self.assertIn('[libvirt] mem_stats_period_second in ', err)
        self.assertIn('did you mean mem_stats_period_seconds?', err)

    def test_known_options_give_no_warning(self):
        rc, out, err = self._guest_xml(
            '--disk', self.kernel,
            conf_body='[DEFAULT]\nstate_path = /tmp/x\n[libvirt]\n'
                      'mem_stats_period_seconds = 5\n')
        self.assertEqual((0, ''), (rc, err))

    # -- command line

    def test_name_newline(self):
        self._check('name-newline', self._guest_xml(
            '--name', 'web\n', '--disk', self.kernel))

    def test_control_character(self):
        self._check('control-character', self._guest_xml(
            '--kernel', self.kernel, '--cmdline', 'console=ttyS0\x01'))
        path = self._file('vm\x1blinuz')
        self._check('control-character', self._guest_xml('--disk', path))

    def test_path_not_utf8(self):
        path = os.fsdecode(os.path.join(self.tmp, 'k').encode() + b'\xff')
        with open(path, 'w') as f:
            f.write('x')
        self._check('path-not-utf8', self._guest_xml('--kernel', path))

    def test_demo_period_too_big(self):
        self._check('demo-period-too-big', self.run_cmd(
            '--config-file', self._conf(''), 'demo', '--period',
            '2147483648'))

    def test_vcpus_too_many(self):
        self._check('vcpus-too-many', self._guest_xml(
            '--vcpus', '100000', '--disk', self.kernel))

    def test_extra_spec_not_integer(self):
        self._check('extra-spec-not-integer', self._guest_xml(
            '--flavor-extra-spec', 'hw:mem_stats_period_seconds=ten',
            '--disk', self.kernel))

    def test_extra_spec_misspelt(self):
        self._check('extra-spec-misspelt', self._guest_xml(
            '--flavor-extra-spec', 'hw:mem_stats_period_second=2',
            '--disk', self.kernel))
        # keys are case-sensitive, as in Nova: another case is refused,
        # not carried as an unknown key (and the guest given the default)
        for option, key in (
                ('--flavor-extra-spec', 'HW:MEM_STATS_PERIOD_SECONDS'),
                ('--image-property', 'HW_MEM_STATS_PERIOD_SECONDS'),
                ('--flavor-extra-spec', 'Hw:Mem_Stats_Period_Seconds')):
            rc, _, err = self._guest_xml(option, f'{key}=2', '--disk',
                                         self.kernel)
            self.assertEqual(2, rc, err)
            self.assertEqual(1, len(err.splitlines()), err)
            self.assertIn(f'is not one nova-libvirt knows: did you mean '
                          f'{key.lower()}?', err)

    def test_extra_spec_not_boolean(self):
        self._check('extra-spec-not-boolean', self._guest_xml(
            '--flavor-extra-spec', 'hw:mem_free_page_reporting=maybe',
            '--disk', self.kernel))
        rc, _, err = self._guest_xml(
            '--image-property', 'hw_mem_free_page_reporting=maybe',
            '--disk', self.kernel)
        self.assertEqual(2, rc, err)
        self.assertIn("Image property hw_mem_free_page_reporting='maybe' is "
                      'not valid', err)

    def test_reporting_flavor_image_conflict(self):
        self._check('reporting-flavor-image-conflict', self._guest_xml(
            '--flavor-extra-spec', 'hw:mem_free_page_reporting=true',
            '--image-property', 'hw_mem_free_page_reporting=false',
            '--disk', self.kernel))

    def test_flavor_image_conflict(self):
        self._check('flavor-image-conflict', self._guest_xml(
            '--flavor-extra-spec', 'hw:mem_stats_period_seconds=2',
            '--image-property', 'hw_mem_stats_period_seconds=5',
            '--disk', self.kernel))

    def test_not_root(self):
        # the embedded driver, named: an empty connection_uri would mean
        # the host's libvirtd where one runs (test_not_root_by_default)
        self.useFixture(fixtures.MockPatch('os.geteuid', return_value=1000))
        embed_root = os.path.join(self.tmp, 'embed')
        conf = self._conf(f'[DEFAULT]\nstate_path = {self.tmp}\n'
                          '[libvirt]\nvirt_type = qemu\n'
                          f'connection_uri = qemu:///embed?root={embed_root}'
                          '\n')
        self._check('not-root', self.run_cmd(
            '--config-file', conf, 'boot', 'g', '--disk', self.kernel))
        # guest-xml needs no root
        rc, out, err = self.run_cmd('--config-file', conf, 'guest-xml',
                                    '--disk', self.kernel)
        self.assertEqual((0, ''), (rc, err))

    def test_not_root_by_default(self):
        # the default connection, on both kinds of host: without a
        # libvirtd socket the embedded driver (root needed: rc 1); with one
        # the host's libvirtd, whose QEMU user cannot read an image under a
        # directory closed to others (rc 2, before anything is defined)
        self.useFixture(fixtures.MockPatch('os.geteuid', return_value=1000))
        conf = self._conf(f'[DEFAULT]\nstate_path = {self.tmp}\n'
                          '[libvirt]\nvirt_type = qemu\n')
        closed = os.path.join(self.tmp, 'closed')
        os.mkdir(closed, 0o700)
        kernel = os.path.join(closed, 'vmlinuz')
        with open(self.kernel, 'rb') as src, open(kernel, 'wb') as dst:
            dst.write(src.read())
        for socket, rc, words in (
                (None, 1, 'the embedded QEMU driver runs QEMU as root'),
                ('/run/libvirt/libvirt-sock', 2,
                 'libvirtd runs QEMU as its own user, which cannot read it')):
            with fixtures.MockPatch(
                    'nova.virt.libvirt.local_host.libvirtd_socket',
                    return_value=socket):
                got, _, err = self.run_cmd('--config-file', conf, 'boot',
                                           'g', '--disk', kernel)
            self.assertEqual(rc, got, err)
            self.assertIn(words, err)



class LibvirtLogTest(cmd_base.CommandTestCase):
    """A non-root user, once root created /var/log/nova: libvirt must not
    be pointed at a log file it cannot open (libvirtmod fails to load).
    """

    def test_unwritable_log_dir_is_not_used(self):
        from nova.virt.libvirt import api as libvirt_pkg
        log_dir = os.path.join(self.tmp, 'log')
        os.mkdir(log_dir)
        self.assertEqual(
            f'3:file:{log_dir}/nova-libvirt.log',
            libvirt_pkg.libvirt_log_outputs({}, log_dir))
        self.useFixture(fixtures.MockPatch('os.access', return_value=False))
        self.assertIsNone(libvirt_pkg.libvirt_log_outputs({}, log_dir))

    def test_user_setting_wins(self):
        from nova.virt.libvirt import api as libvirt_pkg
        self.assertIsNone(libvirt_pkg.libvirt_log_outputs(
            {'LIBVIRT_LOG_OUTPUTS': '1:stderr'}, self.tmp))


class FaultTest(cmd_base.CommandTestCase):

    def test_multi_line_libvirt_error(self):
        e = exception.LibvirtCallFailed(
            call='defineXML()', name='g',
            reason='XML document failed to validate against schema:\n'
                   'Extra element vcpu in interleave\n  element domain')
        rc, err = 1, f'nova-libvirt: error: {e}\n'
        doc_table.check(self, 'multi-line-libvirt-error', rc, err)
        self.assertEqual(1, len(err.splitlines()))
        self.assertIn('schema: Extra element vcpu in interleave element',
                      str(e))

    def test_frozen_daemon(self):
        conn = fakelibvirt.FakeConnection(fakelibvirt.FakeDomain("g"))
        conn.daemon.clear()
        self.addCleanup(conn.daemon.set)
        self.useFixture(fixtures.MockPatch(
            'nova.virt.libvirt.bounded.MAX_PENDING_CALLS', 2))
        host = libvirt_host.Host('qemu:///system',
                                 opener=lambda uri, read_only: conn)
        first = self.assertRaises(exception.HypervisorUnavailable,
                                  host.get_memory_stats, timeout=0.2)
        later = self.assertRaises(exception.HypervisorUnavailable,
                                  host.get_memory_stats, timeout=0.2)
        self.assertIn('qemu:///system', str(first))
        text = f'{first} {later}'.replace('within 0.2s', 'within 5s')
        doc_table.check(self, 'frozen-daemon', 1, text)

    def _collect(self, xml):
        good = fakememstats.make_record('good', PERIOD_2, fakememstats.FULL)
        bad = fakememstats.make_record('bad', '', fakememstats.FULL)
        bad.guest.xml = xml
        rows = memstats.MemoryStatsCollector(
            fakememstats.StatsSource([good, bad]),
            clock=lambda: fakememstats.NOW).collect()
        self.assertEqual('ok', rows[1].stats_state)
        return f'{rows[0].stats_state}: {rows[0].reason}'

    def test_huge_domain_xml(self):
        xml = fakememstats.domain_xml(PERIOD_2 + '<x/>' * (1024 * 1024))
        doc_table.check(self, 'huge-domain-xml', 0, self._collect(xml))

    def test_xml_declaration(self):
        xml = ('<?xml version="1.0" encoding="UTF-8"?>' +
               fakememstats.domain_xml(PERIOD_2))
        doc_table.check(self, 'xml-declaration', 0, self._collect(xml))


class PageTest(cmd_base.CommandTestCase):

    def test_page_and_tests_list_the_same_cases(self):
        tested = {name[len('test_'):].replace('_', '-')
                  for cls in (BadInputTest, FaultTest)
                  for name in vars(cls) if name.startswith('test_')}
        documented = set(doc_table.rows())
        self.assertEqual(set(), documented - tested - set(FUNCTIONAL))
        for case, path in FUNCTIONAL.items():
            with open(os.path.join(doc_table.ROOT, path)) as f:
                self.assertTrue(f"'{case}'" in f.read(),
                                f'{path} does not run case {case}')
