"""The ``nova-libvirt`` command line.

oslo.config conventions: ``--config-file`` and ``--config-dir`` choose the
configuration, a subcommand chooses the action. Every failure the user can
act on ends in one line on stderr: exit status 2 for bad input (arguments
or configuration), 1 for a failure while acting. This module parses and
prints only; building guests is the driver's job.
"""

import contextlib
import io
import os
import stat
import sys
import time

from oslo_config import cfg

from nova import config
from nova import exception
from nova import hints
from nova import utils
from nova.cmd import args as args_util
from nova.cmd import demo
from nova.cmd import instance_args
from nova.cmd import output
import nova.conf
from nova.conf import libvirt as libvirt_conf
from nova.virt.libvirt import driver
from nova.virt.libvirt import guest_state
from nova.virt.libvirt import local_host
from nova.virt.libvirt import stats_period

CONF = nova.conf.CONF
PROG = 'nova-libvirt'


SET_PERIOD_USAGE = ('give the period and the guests to change: SECONDS '
                    'NAME ..., or SECONDS --all')
ALL_AND_NAMES = 'give either guest names or --all, not both'


def do_guest_xml(args) -> int:
    instance, image_meta = instance_args.instance_from_args(args)
    # Nothing is asked of libvirt; were it, read-only would do.
    guest = driver.LibvirtDriver(read_only=True).get_guest_config(
        instance, image_meta)
    sys.stdout.write(guest.to_xml())
    return 0


def command(*words: str) -> str:
    """``nova-libvirt WORDS`` as the user would type it again (as they
    ran it, with the --config-file and --config-dir this run was given:
    nova.hints), so that advice reaches the same libvirt.
    """
    return hints.command(*words)


def _dirs(value) -> list:
    """oslo.config's config_dir: one path, a list, or None."""
    if not value:
        return []
    return [value] if isinstance(value, str) else list(value)


def closed_to_others(path: str) -> str | None:
    """The directory above ``path`` that a user other than its owner may
    not search, else None. A libvirtd runs QEMU as its own user (Debian:
    libvirt-qemu) and hands it the image files (their owner changes), but
    not the directories above them.
    """
    parts = os.path.abspath(path).split(os.sep)
    for end in range(2, len(parts)):
        step = os.sep.join(parts[:end])
        try:
            mode = os.stat(step).st_mode
        except OSError:
            return None  # instance_from_args says what is missing
        if not mode & stat.S_IXOTH:
            return step
    return None


def _check_readable_by_qemu(drv, image_meta) -> None:
    """One line, before anything is defined, when a libvirtd's QEMU could
    not open the image (libvirt would say "could not open kernel file ...:
    Permission denied" only once the guest starts).
    """
    if drv.host.embedded or not drv.host.uri.startswith('qemu'):
        return  # the embedded driver runs QEMU as root
    for option, path in (('--kernel', image_meta.kernel_path),
                         ('--initrd', image_meta.ramdisk_path),
                         ('--disk', image_meta.disk_path)):
        closed = path and closed_to_others(path)
        if closed:
            raise args_util.UsageError(reason=(
                f'{option} {utils.shorten(path)}: libvirtd runs QEMU as '
                f'its own user, which cannot read it ({closed} is closed to '
                'other users): copy it under /var/lib/libvirt/images, or '
                'use the embedded driver.'))


def _guests(count: int) -> str:
    return f'{count} guest' + ('' if count == 1 else 's')


def where(drv) -> str:
    """Which libvirt a command used, and why that one: its last line says
    it (an error names the URI already, in its one line).
    """
    uri, why = drv.connection
    return f'{uri} ({why})'


def do_boot(args) -> int:
    if args.virt_type is not None:
        CONF.set_override('virt_type', args.virt_type, 'libvirt')
    instance, image_meta = instance_args.instance_from_args(args)
    drv = driver.LibvirtDriver()
    _check_readable_by_qemu(drv, image_meta)
    collector = None
    if args.wait is not None:
        # A look before the guest exists: the collector then sees it
        # start, and calls it 'starting' until it may be expected to report.
        collector = drv.memory_stats_collector()
        collector.collect([instance.name])
    guest = drv.spawn(instance, image_meta)
    print(guest.uuid)
    print(f'{PROG}: guest {guest.name} runs on {where(drv)}; it outlives '
          f'this command: "{command("destroy", guest.name)}" stops it.',
          file=sys.stderr)
    if collector is None:
        return 0
    console = os.path.join(drv.get_instance_dir(instance), 'console.log')
    return _wait_for_report(collector, guest.name, args.wait, console)


# States in which a guest just booted is where it should be: reporting, or
# (statistics disabled by configuration) never going to.
_SETTLED = (guest_state.OK, guest_state.BALLOON_DISABLED,
            guest_state.NO_STATS_PERIOD)


def _console_empty(path: str) -> bool:
    """Whether the guest's serial console log exists and is empty: a
    guest that never got as far as its kernel.
    """
    try:
        return os.path.getsize(path) == 0
    except OSError:
        return False


def _wait_for_report(collector, name: str, seconds: int,
                     console: str) -> int:
    """Wait (at most ``seconds``) for the guest's first statistics report,
    saying every 5 seconds where it is; exit status 0 once it reports (or
    is configured not to), 1 if it does not in time.
    """
    start = time.monotonic()
    said = 0.0
    while True:
        row = collector.collect([name])[0]
        waited = time.monotonic() - start
        if row.stats_state in _SETTLED:
            print(f'{PROG}: {name} is {row.stats_state} after '
                  f'{waited:.0f}s: {row.reason}', file=sys.stderr)
            return 0
        if waited >= seconds:
            kvm = (': check that KVM works on this host, or use '
                   '--virt-type qemu' if CONF.libvirt.virt_type == 'kvm'
                   else '')
            booted = (f'; it never booted: its console {console} stayed '
                      f'empty{kvm}' if _console_empty(console) else
                      f'; its console is {console}')
            print(f'{PROG}: {name} has not reported within {seconds}s '
                  f'(state {row.stats_state}: {row.reason}){booted}.',
                  file=sys.stderr)
            return 1
        if waited - said >= 5:
            said = waited
            print(f'{PROG}: waiting for {name} to report: '
                  f'{row.stats_state} after {waited:.0f}s', file=sys.stderr)
        time.sleep(1)


def do_destroy(args) -> int:
    drv = driver.LibvirtDriver()
    name = args.instance_name
    drv.destroy(name)
    print(f'{PROG}: guest {name} stopped and removed from {where(drv)}.',
          file=sys.stderr)
    return 0


def do_memstats(args) -> int:
    # Read-only: a monitoring user outside group libvirt may run it.
    drv = driver.LibvirtDriver(read_only=True)
    rows = drv.memory_stats_collector().collect(args.names or None)
    if not rows:
        print(f'No guests on {where(drv)}.')
        for hint in local_host.guests_elsewhere(drv.host.uri, CONF.state_path):
            print(f'{PROG}: {hint}', file=sys.stderr)
        return 0
    sys.stdout.write(output.format_memstats(rows, args.format,
                                            wide=args.wide))
    missing = [row for row in rows if row.stats_state == guest_state.ERROR
               and row.uuid is None]
    # a name not there is not a guest read (said below, one line each)
    read = len(rows) - len(missing)
    absent = f' ({len(missing)} not found)' if missing else ''
    print(f'{PROG}: memstats read {_guests(read)}{absent} on '
          f'{where(drv)}.', file=sys.stderr)
    for row in missing:
        print(f'{PROG}: error: {row.reason}', file=sys.stderr)
    return 1 if missing else 0


def _report(command: str, drv, outcomes, dry_run: bool,
            words: dict) -> None:
    """Each guest's line, the tally in ``words`` (action: word), and on
    stderr the connection used.
    """
    if dry_run:
        words = {**words, stats_period.CHANGE: 'would change'}
    counts = dict.fromkeys(words, 0)
    for outcome in outcomes:
        print(outcome.line)
        key = 'failed' if outcome.change is None else outcome.change.action
        counts[key] += 1
    text = ', '.join(f'{counts[key]} {word}' for key, word in words.items())
    waiting = sum(1 for o in outcomes if o.waits is not None)
    if waiting:
        text += (f'; {waiting} with free page reporting to change when '
                 'recreated')
    print(f'{command}: {text}' +
          (' (dry run: nothing was changed)' if dry_run else ''))
    print(f'{PROG}: {command} on {where(drv)}.', file=sys.stderr)


def do_set_period(args) -> int:
    if args.names and args.all:
        raise args_util.UsageError(reason=ALL_AND_NAMES)
    if not args.names and not args.all:
        raise args_util.UsageError(
            reason='give the guests to change (NAME ...) or --all')
    drv = driver.LibvirtDriver()
    outcomes = drv.set_memory_stats_period(
        args.seconds, args.names or None, dry_run=args.dry_run)
    _report('set-period', drv, outcomes, args.dry_run, {
        stats_period.CHANGE: 'changed', stats_period.KEEP: 'unchanged',
        stats_period.CANNOT: 'cannot change', 'failed': 'failed'})
    ok = all(o.change is not None and o.change.action != stats_period.CANNOT
             for o in outcomes)
    return 0 if ok else 1


def do_reconcile(args) -> int:
    drv = driver.LibvirtDriver()
    period, outcomes = drv.reconcile_memory_stats_period(
        dry_run=args.dry_run)
    host = (f'{period}s' if period else
            'none (0 or below: statistics disabled)')
    print('reconcile: bringing every guest to the period it asks for: its '
          f"flavor's {stats_period.EXTRA_SPEC}, else its image's "
          f'{stats_period.IMAGE_PROPERTY}, else {host} '
          f'({stats_period.OPTION})')
    _report('reconcile', drv, outcomes, args.dry_run, {
        stats_period.CHANGE: 'changed', stats_period.KEEP: 'already right',
        stats_period.CANNOT: 'need recreation', 'failed': 'failed'})
    return 1 if any(o.change is None for o in outcomes) else 0


def _add_set_period_args(parser):
    parser.add_argument(
        'seconds', metavar='SECONDS',
        type=args_util.integer(0, libvirt_conf.INT_MAX),
        help='The new period, 0 to 2147483647; 0 stops the reports.')
    parser.add_argument('names', metavar='NAME', nargs='*',
                        help='Guests to change.')
    parser.add_argument('--all', action='store_true',
                        help='Change every guest on the connection.')
    _add_dry_run_arg(parser)


def _add_dry_run_arg(parser):
    parser.add_argument('--dry-run', action='store_true',
                        help='Print what would change; change nothing.')


def _add_boot_args(parser):
    instance_args.add_instance_args(parser, positional_name=True)
    parser.add_argument(
        '--virt-type', choices=('qemu', 'kvm'),
        help='Override [libvirt] virt_type for this guest: qemu '
             '(software emulation, runs anywhere) or kvm.')
    parser.add_argument(
        '--wait', metavar='SECONDS', nargs='?', const=60,
        type=args_util.integer(1, 3600),
        help='Wait until the guest first reports its statistics (at most '
             'SECONDS, default 60), showing progress, and say which state '
             'it reached; exit 1 if it did not report.')


def _add_memstats_args(parser):
    parser.add_argument('names', metavar='NAME', nargs='*',
                        help='Guests to report (default: all).')
    parser.add_argument('--format', choices=output.FORMATS,
                        default='table',
                        help='Output format (default: %(default)s).')
    parser.add_argument('--wide', action='store_true',
                        help='A table of one line a guest, a column a '
                             'figure (wider than 100 columns).')


#: Subcommands: name -> (handler, help, adds its own arguments)
COMMANDS = {
    'guest-xml': (do_guest_xml,
                  'Print the domain XML built for an instance under the '
                  'loaded configuration.', instance_args.add_instance_args),
    'boot': (do_boot, 'Define and start a guest on the configured '
                      'connection and print its UUID.', _add_boot_args),
    'destroy': (do_destroy, 'Stop and undefine a guest and remove its '
                            'files.', instance_args.add_name_arg),
    'memstats': (do_memstats, "Report every guest's memory statistics, "
                              'with a reason wherever a figure is missing.',
                 _add_memstats_args),
    'set-period': (do_set_period, 'Set the statistics period of existing '
                                  'guests, live and persistently, without '
                                  'a reboot (the next reconcile brings '
                                  'them back to what they ask for).',
                   _add_set_period_args),
    'reconcile': (do_reconcile, 'Bring every guest to the period its '
                                'flavor or image asks for, else [libvirt] '
                                'mem_stats_period_seconds, as a compute '
                                'service would at start.',
                  _add_dry_run_arg),
    'demo': (demo.run, 'Boot a guest with statistics and one without, on '
                      'the configured connection, show what each reports, '
                      'and remove both.', demo.add_args),
}


def add_command_parsers(subparsers) -> None:
    for name, (handler, help_text, add_args) in COMMANDS.items():
        parser = subparsers.add_parser(name, help=help_text,
                                       description=help_text)
        add_args(parser)
        parser.set_defaults(handler=handler)


command_opt = cfg.SubCommandOpt('command', title='Commands',
                                handler=add_command_parsers,
                                help='Run "nova-libvirt COMMAND --help" for '
                                     "a command's options.")


@contextlib.contextmanager
def _one_line_usage_errors(argv: list[str]):
    """argparse prints usage then the error; keep only the error line."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            yield
    except SystemExit as e:
        lines = [line for line in captured.getvalue().splitlines() if line]
        if e.code and lines:
            message = lines[-1].split('error: ', 1)[-1]
            if (message.startswith('unrecognized arguments') and
                    'set-period' in argv and '--all' in argv):
                # names after --all: argparse cannot take them there
                message = ALL_AND_NAMES
            elif (message.startswith('the following arguments are '
                                     'required') and 'set-period' in argv):
                # argparse calls NAME required; --all does as well
                message = SET_PERIOD_USAGE
            raise args_util.UsageError(reason=message) from None
        sys.stderr.write(captured.getvalue())
        raise
    sys.stderr.write(captured.getvalue())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Registered for this run only: oslo.config makes a subcommand
    # required, which would break every other parse of the global CONF.
    CONF.register_cli_opt(command_opt)
    try:
        return _run(argv)
    finally:
        CONF.clear()
        CONF.unregister_opt(command_opt)


def configure(argv: list[str]) -> None:
    """Load the configuration ``argv`` names; advice repeats its files."""
    config.parse_args(argv)
    hints.set_config(CONF.config_file, _dirs(CONF.config_dir))


def _run(argv: list[str]) -> int:
    try:
        with _one_line_usage_errors(argv):
            configure(argv)
        for warning in config.unknown_options(CONF):
            print(f'{PROG}: warning: {warning}', file=sys.stderr)
        handler = getattr(CONF.command, 'handler', None)
        if handler is None:
            raise args_util.UsageError(
                reason='a command is required: one of ' + ', '.join(COMMANDS))
    except (args_util.UsageError, exception.InvalidConfig,
            exception.InvalidInstance) as e:
        print(f'{PROG}: error: {e}', file=sys.stderr)
        return 2
    try:
        return handler(CONF.command)
    except (args_util.UsageError, exception.InvalidInstance,
            exception.InvalidLibvirtConfigValue) as e:
        print(f'{PROG}: error: {e}', file=sys.stderr)
        return 2
    except exception.NovaException as e:
        print(f'{PROG}: error: {e}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f'{PROG}: interrupted', file=sys.stderr)
        return 130


def run() -> int:
    """The console script: advice names the command as this operator ran
    it (nova.hints), then main(). libvirt loads when a command first
    needs it (nova.virt.libvirt.api), its log routed then.
    """
    hints.set_command(hints.runnable_name(sys.argv[0]))
    return main()


if __name__ == '__main__':
    sys.exit(run())
