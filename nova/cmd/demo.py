"""``nova-libvirt demo``: the feature, shown on two real guests.

On the configured connection (out of the box an embedded QEMU driver of
its own, never the host's libvirtd unless ``[libvirt] connection_uri``
names it) it builds the test image if needed, boots one guest with the
configured period and one whose flavor disables statistics
(``hw:mem_stats_period_seconds=0``), shows each domain's
memballoon as libvirt stored it, polls their statistics for a few periods
with progress on stderr, prints what each reports, and removes both
guests, also on Ctrl-C, SIGTERM, SIGHUP (a closed terminal or SSH session)
or error. Results go to stdout, progress to stderr.
"""

import copy
import os
import signal
import sys
import time

from lxml import etree

from nova import exception
from nova import testimage
from nova.cmd import args as args_util
from nova.cmd import output
import nova.conf
from nova.conf import libvirt as libvirt_conf
from nova.objects import instance as instance_obj
from nova.virt.libvirt import config as vconfig
from nova.virt.libvirt import driver as libvirt_driver
from nova.virt.libvirt import embed
from nova.virt.libvirt import guest_state
from nova.virt.libvirt import host as libvirt_host

CONF = nova.conf.CONF

ON, OFF = 'memstats-demo-on', 'memstats-demo-off'
# What turns statistics off for the second guest: its flavor's extra spec.
OFF_SPEC = 'hw:mem_stats_period_seconds'
# Seconds the guest may take to boot and send its first report (measured:
# about 3 s under software emulation).
BOOT_ALLOWANCE = 30


def add_args(parser) -> None:
    parser.add_argument(
        '--virt-type', choices=('qemu', 'kvm'), default='qemu',
        help='Domain type of the demo guests (default: qemu, software '
             'emulation, which runs anywhere; kvm guests hung on hosts '
             'whose /dev/kvm QEMU cannot use).')
    parser.add_argument(
        '--period', type=args_util.integer(1, libvirt_conf.INT_MAX),
        default=None,
        help='Statistics period of the first guest in seconds (default: '
             '[libvirt] mem_stats_period_seconds).')
    parser.add_argument(
        '--periods', type=int, default=3, choices=range(1, 11),
        metavar='K', help='Watch until the first guest has reported K '
                          'more times (1-10, default: %(default)s).')


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _stored_memballoon(guest) -> str:
    """The <memballoon> element of the domain's XML as libvirt stores it."""
    el = vconfig.parse_xml(guest.get_xml_desc()).find('devices/memballoon')
    if el is None:
        return '(no <memballoon> element)'
    el = copy.deepcopy(el)  # a detached copy, re-indented on its own
    el.tail = None
    for child in el.iter():
        if child.text is not None and not child.text.strip():
            child.text = None
        if child is not el and child.tail is not None:
            child.tail = None
    etree.indent(el, space='  ')
    return etree.tostring(el, encoding='unicode')


class _Progress:
    """One status line, rewritten in place on a terminal."""

    def __init__(self):
        self.tty = sys.stderr.isatty()
        self.last_print = 0.0

    def update(self, text: str) -> None:
        if self.tty:
            sys.stderr.write('\r\033[K' + text)
            sys.stderr.flush()
        elif time.monotonic() - self.last_print >= 5:
            say(text)
            self.last_print = time.monotonic()

    def done(self) -> None:
        if self.tty:
            sys.stderr.write('\n')


def _watch(collector, period: int, periods: int) -> tuple[list, int]:
    """Poll until ON has reported ``periods`` more times.

    Returns the last rows and how many distinct reports ON made.
    """
    deadline = time.monotonic() + BOOT_ALLOWANCE + (periods + 1) * period
    start = time.monotonic()
    updates = []  # distinct last_update values of ON
    progress = _Progress()
    rows = []
    while time.monotonic() < deadline:
        rows = collector.collect([ON, OFF])
        on = rows[0]
        if on.last_update and on.last_update not in updates:
            updates.append(on.last_update)
        progress.update(
            f'[{time.monotonic() - start:4.0f}s] {ON}: {on.stats_state}, '
            f'{max(0, len(updates) - 1)}/{periods} fresh reports | '
            f'{OFF}: {rows[1].stats_state}')
        if len(updates) > periods:
            break
        time.sleep(1)
    progress.done()
    return rows, len(updates)


def _demo_host() -> libvirt_host.Host:
    """The configured connection, else an embedded root of the demo's own:
    never the host's libvirtd unless [libvirt] connection_uri names it, so
    that the demo's guests are never the host's.
    """
    uri = CONF.libvirt.connection_uri or embed.embed_uri(
        os.path.join(CONF.state_path, 'libvirt', 'qemu-embed'))
    return libvirt_host.Host(
        uri, stats_workers=CONF.libvirt.mem_stats_poll_workers,
        timeout=CONF.libvirt.mem_stats_poll_timeout)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def run(args) -> int:
    CONF.set_override('virt_type', args.virt_type, 'libvirt')
    period = args.period if args.period is not None else \
        CONF.libvirt.mem_stats_period_seconds
    if period <= 0:
        raise exception.InvalidInstance(
            reason=f'The statistics period is {period}, which disables '
                   'statistics for both demo guests: pass --period N '
                   '(N > 0).')
    drv = libvirt_driver.LibvirtDriver(host=_demo_host())
    say(f'virt_type {args.virt_type}'
        + (' (software emulation; --virt-type kvm for hardware '
           'acceleration)' if args.virt_type == 'qemu' else ''))
    say(f'connection {drv.host.uri}')
    drv.host.connect()  # fail in one line (say, not root) before building
    images = testimage.get_images(testimage.DEFAULT_CACHE, say)
    image_meta = images['balloon'].image_meta()

    created = []
    previous = {signum: signal.signal(signum, _raise_interrupt)
                for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        # The option is the first guest's period, for the whole run: each
        # guest is then read against the period it asks for (the second
        # asks for none through its flavor, as an operator's would).
        CONF.set_override('mem_stats_period_seconds', period, 'libvirt')
        for name, specs, said in (
                (ON, {}, f'mem_stats_period_seconds = {period}'),
                (OFF, {OFF_SPEC: '0'}, f'its flavor has {OFF_SPEC}=0')):
            _remove_leftover(drv, name)
            say(f'booting {name} ({said})')
            created.append(name)
            guest = drv.spawn(instance_obj.Instance(
                name, flavor_extra_specs=specs), image_meta)
            print(f'{name}: memballoon as libvirt stored it:')
            print('    ' + _stored_memballoon(guest).replace(
                '\n', '\n    '))
        say(f'watching statistics for {args.periods} periods of '
            f'{period}s (Ctrl-C stops and cleans up)')
        rows, updates = _watch(drv.memory_stats_collector(), period,
                               args.periods)
        print()
        sys.stdout.write(output.format_table(rows))
        print()
        _verdict(rows, updates, period)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # finish cleaning up
        try:
            for name in reversed(created):
                _remove(drv, name)
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
    return 0


def _verdict(rows, updates: int, period: int) -> None:
    on, off = rows
    if on.stats_state == guest_state.OK and updates > 1:
        print(f'{ON}: fresh figures: the guest reported {updates} times, '
              f'every {period}s (usage {on.memory_usage_mb} MiB of '
              f'{on.memory_available_mb} MiB).')
    else:
        print(f'{ON}: {on.stats_state}: {on.reason}')
    print(f'{OFF}: {off.stats_state}: only host-side figures (resident '
          f'{off.memory_resident_mb} MiB), no guest figures.')


def _remove_leftover(drv, name: str) -> None:
    if drv.host.find_guest(name) is None:
        return
    say(f'removing {name}, left over from an earlier demo')
    drv.destroy(name)


def _remove(drv, name: str) -> None:
    try:
        drv.destroy(name)
        say(f'removed {name}')
    except exception.InstanceNotFound:
        pass
    except exception.NovaException as e:
        say(f'could not remove {name}: {e}')
