"""The [libvirt] option group: the options this slice of the driver reads.

Types and bounds live in the options themselves; values are checked when
the configuration loads (``nova.config.parse_args``), so no code downstream
validates them again.
"""

from oslo_config import cfg
from oslo_config import types

# libvirt stores the statistics period as a C int.
INT_MAX = 2147483647
# libvirt 9.0's hypervisor drivers: a URI's scheme is one of these, with an
# optional "+transport" (qemu+ssh://...).
LIBVIRT_DRIVERS = ('qemu', 'test', 'lxc', 'xen', 'libxl', 'ch', 'bhyve',
                   'vz', 'openvz', 'vbox', 'esx', 'gsx', 'vpx', 'hyperv',
                   'vmwareplayer', 'vmwarews', 'vmwarefusion')


class ConnectionURI(types.String):
    """A libvirt URI, or empty: a URI whose driver libvirt does not know is
    refused when the configuration loads, not at the first call.
    """

    type_name = 'libvirt URI value'
    #: what nova.config's one-line error says is expected
    allowed = ('expected a libvirt URI whose driver libvirt knows, such as '
               'qemu:///system, or nothing (drivers: ' +
               ', '.join(LIBVIRT_DRIVERS) + ')')

    def __call__(self, value):
        value = super().__call__(value)
        if value:
            scheme = value.partition(':')[0]
            driver = scheme.partition('+')[0]
            if ':' not in value or driver not in LIBVIRT_DRIVERS:
                raise ValueError(f'{value!r}: {self.allowed}')
        return value

libvirt_group = cfg.OptGroup(
    'libvirt',
    title='Libvirt Options',
    help="""
Libvirt options allow cloud administrators to configure the libvirt
hypervisor driver to be used within an OpenStack deployment.
""")

libvirt_general_opts = [
    cfg.StrOpt('virt_type',
               default='kvm',
               choices=(
                   ('kvm', 'Hardware-accelerated guests (needs a usable '
                           '/dev/kvm).'),
                   ('qemu', 'Software-emulated guests: slow, but runs '
                            'anywhere.'),
                   ('lxc', 'Linux containers.'),
               ),
               help="""
Describes the virtualization type (or so called domain type) libvirt should
use.

The choice of this type must match the underlying virtualization strategy
you have chosen for the host.

Related options:

* ``connection_uri``: depends on this
* ``mem_stats_period_seconds``: applies to ``kvm`` and ``qemu`` only
"""),
    cfg.Opt('connection_uri',
            type=ConnectionURI(),
            default='',
            help="""
Overrides the default libvirt URI of the chosen virtualization type.

If set, nova-libvirt connects to this URI and ``virt_type`` is only used to
build the guests' XML. If unset, as Nova and ``virsh`` do, ``kvm`` and
``qemu`` use the host's libvirtd (``qemu:///system``) where its socket
exists (``/run/libvirt/libvirt-sock``, or ``virtqemud-sock``), and
otherwise an embedded QEMU driver,
``qemu:///embed?root=$state_path/libvirt/qemu-embed``, which runs in the
nova-libvirt process and needs no libvirt daemon; ``lxc`` uses
``lxc:///system``. Every command says, on its last line, which connection
it used and why; ``nova-libvirt demo`` uses an embedded root of its own
unless this is set.

Possible values:

* An empty string (the default), for the behaviour above.
* Any libvirt URI, for example ``qemu:///system`` to use the libvirtd
  daemon, whose guests outlive the nova-libvirt command.

Related options:

* ``virt_type``
* ``[DEFAULT] state_path``
"""),
    cfg.IntOpt('mem_stats_period_seconds',
               default=10,
               max=INT_MAX,
               mutable=True,
               help="""
A number of seconds to memory usage statistics period.

QEMU asks the guest's balloon driver for fresh memory statistics this
often, and libvirt reports them through ``virDomainMemoryStats`` (``virsh
dommemstat``), which telemetry such as Ceilometer polls. The period is
written into each new ``kvm`` or ``qemu`` guest's XML as
``<memballoon model="virtio"><stats period="N"/></memballoon>``.

Zero or a negative value disables memory usage statistics: the guest then
gets ``<memballoon model="none"/>`` and libvirt reports only the figures it
knows without the guest (``actual`` and ``rss``). A balloon without a period
would be worse than none: its figures are read once at boot and never
refreshed.

The guest must run a balloon driver to report anything: Linux guests need
the ``virtio_balloon`` module, Windows guests the virtio balloon driver from
the virtio-win drivers. A guest without one still boots; it just reports no
guest-side figures. The option takes effect for guests defined after the
change.

A guest may ask for a period of its own: its flavor's extra spec
``hw:mem_stats_period_seconds``, else its image's property
``hw_mem_stats_period_seconds``, overrides this option for it (0 or below
disables; a flavor and an image that disagree are refused). This option is
the period of guests that ask for none.

Possible values:

* A positive integer, up to 2147483647: the period in seconds.
* Zero or a negative integer: statistics disabled.

Related options:

* ``virt_type``: ignored for ``lxc``, which has no balloon.
* ``mem_stats_poll_timeout``
* ``mem_stats_start_grace_seconds``
"""),
    cfg.BoolOpt('mem_free_page_reporting',
                default=True,
                mutable=True,
                help="""
Whether a new guest's memory balloon reports the pages the guest frees to
the host (virtio free page reporting), so that the host reclaims them.

Written into each new ``kvm`` or ``qemu`` guest whose balloon has a
statistics period as ``freePageReporting="on"`` or ``"off"``, Nova's
default being on (since Nova 32). Reporting costs the guest vCPU time in
exits to the host; a guest backed by hugepages gains nothing from
returning 4 KiB pages. So, as KubeVirt does, a guest whose flavor asks for
hugepages (``hw:mem_page_size`` other than ``small`` or ``any``, or an
image's ``hw_mem_page_size`` its flavor allows), realtime vCPUs
(``hw:cpu_realtime``) or dedicated CPUs (``hw:cpu_policy=dedicated``) gets
it off, unless its flavor's extra spec ``hw:mem_free_page_reporting`` says
true. The flavor's extra spec, else the image's property
``hw_mem_free_page_reporting``, overrides this option for a guest (a
flavor and an image that disagree are refused). Libvirt cannot change it
on an existing guest: it applies when the guest is defined again (in Nova,
a hard reboot); ``reconcile`` says which guests differ.

Possible values:

* true: reported, where no flavor, image or default above says otherwise.
* false: not reported, on every guest that does not ask for it.

Related options:

* ``mem_stats_period_seconds``: a guest without statistics (model none)
  has no free page reporting either.
"""),
    cfg.IntOpt('mem_stats_start_grace_seconds',
               default=60,
               min=0,
               max=86400,
               mutable=True,
               help="""
How long, in seconds, after its QEMU started a guest that has not reported
memory statistics yet is called ``starting`` rather than
``no-guest-driver``.

A guest reports only once its balloon driver loaded, which takes a boot:
a small Linux guest under software emulation took up to 10 seconds here
(``tools/bench/first_report.py``), a distribution's cloud image longer,
and a Windows guest loads its driver minutes after it starts. Within the
grace (or two statistics periods, if longer) a guest that never reported
is booting; after it, it has no balloon driver. Raise it for guests that
boot slowly, so that no-guest-driver (and its alert) means a missing
driver.

Possible values:

* An integer from 0 to 86400: seconds after the guest's start. 0 leaves
  only the two periods.

Related options:

* ``mem_stats_period_seconds``
"""),
    cfg.IntOpt('mem_stats_keep_unresponsive_periods',
               default=3,
               min=0,
               max=1000,
               mutable=True,
               help="""
How many statistics periods after its last report a guest whose QEMU stops
answering keeps its last figures, in ``memstats`` of a long-lived
collector and in the exporter.

A stopped or hung QEMU answers nothing, so libvirt gives only the figures
it knows without the guest. Rather than its series vanishing at once, the
guest keeps its last report's figures and their time
(``last_update``), state ``unresponsive``, this many periods after that
report; then only its state. Rules and dashboards that judge memory
pressure read guests in state ``ok`` only, so old figures never count as
current pressure.

Possible values:

* An integer from 0 to 1000: periods after the last report. 0 drops the
  figures at once.

Related options:

* ``mem_stats_period_seconds``
* ``mem_stats_poll_timeout``
"""),
    cfg.IntOpt('mem_stats_poll_timeout',
               default=5,
               min=1,
               max=3600,
               mutable=True,
               help="""
Longest time, in seconds, that one poll of the guests' memory statistics
waits for libvirt.

A guest whose QEMU process does not answer (stopped, stuck in a migration
or hung) blocks libvirt's statistics call. A poll waits half this time for
libvirt's answer, then asks again without waiting for busy guests: every
other guest gets fresh figures and the stuck one is reported
``unresponsive``, with how long its QEMU monitor has been busy. If libvirt
itself does not answer within this time, the poll fails with a one-line
error (``nova-libvirt memstats`` exits 1; the exporter reports
``libvirt_up 0``).

Possible values:

* An integer from 1 to 3600: the bound in seconds.

Related options:

* ``mem_stats_period_seconds``
* ``mem_stats_poll_workers``
"""),
    cfg.IntOpt('mem_stats_poll_workers',
               default=0,
               min=0,
               max=16,
               help="""
Parallel libvirt calls one poll of the guests' memory statistics may use.

libvirt reads the guests' balloon figures one guest after another, asking
each guest's QEMU in turn. In parallel chunks a poll of many guests takes
less time (measured through the system libvirtd on 2 cores: 20 real guests
in 4 chunks took 0.61-0.74 times one bulk call, 10 guests 0.70, 6 guests in
3 chunks 0.71-0.81). The default, 0, chooses from the number of running
guests: one bulk call below 6, else one chunk per 2 guests, at most 4 (and
twice the cores). A value
of 1 makes every poll exactly one libvirt call; a value of N reads in up to
N chunks (N + 1 calls with the listing), whatever the number of guests.
Read at start.

Possible values:

* 0: chosen from the number of guests (the default).
* An integer from 1 to 16.

Related options:

* ``mem_stats_poll_timeout``: bounds the whole poll, all chunks included.
"""),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_group(libvirt_group)
    conf.register_opts(libvirt_general_opts, group=libvirt_group)


def list_opts() -> dict:
    return {libvirt_group: libvirt_general_opts}
