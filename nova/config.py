"""Loading the configuration: parse the command line and files, then check.

oslo.config converts a value only when it is first read, so a bad value in
nova.conf would surface at the first guest start. ``parse_args`` reads every
registered option once, at load, and turns any refusal into one message
that names the option, the value, where it came from and what is allowed.
Before oslo.config reads a file, the file is checked (a regular, readable,
UTF-8 file of sane size), so a directory, ``/dev/zero`` or a binary file is
refused in one line rather than a traceback or a memory blow-up. Options
oslo.config would silently ignore (misspelt, or in the wrong section) are
listed by ``unknown_options`` so that commands can warn; those of Nova's
own nova.conf (nova/conf/nova-options.txt, written by tools/nova-options)
are ignored quietly, so an operator can point nova-libvirt at the compute
node's nova.conf.
"""

import argparse
import difflib
import functools
import glob
import importlib.resources
import logging
import os

from oslo_config import cfg
from oslo_config import types

from nova import exception
from nova import readfile
from nova import utils


def _allowed(opt: cfg.Opt) -> str:
    """What ``opt`` accepts, in words."""
    kind = opt.type
    if getattr(kind, 'allowed', None):
        return kind.allowed
    if isinstance(kind, types.Integer):
        if kind.min is not None and kind.max is not None:
            return f'expected an integer from {kind.min} to {kind.max}'
        if kind.max is not None:
            return f'expected an integer no greater than {kind.max}'
        if kind.min is not None:
            return f'expected an integer of at least {kind.min}'
        return 'expected an integer'
    if getattr(kind, 'choices', None):
        return 'expected one of ' + ', '.join(map(str, kind.choices))
    return f'expected {kind.type_name}'


def _config_files(conf: cfg.ConfigOpts) -> list[str]:
    """The files oslo.config read, in the order later ones override."""
    files = list(conf.config_file or [])
    dirs = conf.config_dir or []
    for directory in [dirs] if isinstance(dirs, str) else dirs:
        files += sorted(glob.glob(os.path.join(directory, '*.conf')))
    return files


def _parsed_files(conf: cfg.ConfigOpts):
    """(path, {section: {option: [values]}}) of each file read, as text."""
    for path in _config_files(conf):
        sections: dict = {}
        try:
            cfg.ConfigParser(path, sections).parse()
        except (OSError, cfg.ParseError):
            continue
        yield path, sections


def _raw_value(conf: cfg.ConfigOpts, group: str, name: str):
    """The text that set ``[group] name`` in a file, and that file.

    oslo.config cannot tell a bad value's location without converting it
    (and failing again), so the files are read as text here.
    """
    found = None, None
    for path, sections in _parsed_files(conf):
        values = sections.get(group, {}).get(name)
        if values:
            found = values[-1], path
    return found


# A configuration file larger than this is refused unread.
MAX_CONFIG_BYTES = 1024 * 1024
shorten = utils.shorten


def _refuse(conf: cfg.ConfigOpts, gname: str, opt: cfg.Opt,
            reason: str | None = None):
    value, where = _raw_value(conf, gname, opt.dest)
    if value is None:
        value = '(unreadable)'
    elif not value.strip():
        value = '(empty)'
    raise exception.InvalidConfigValue(
        group=gname, option=opt.dest, value=shorten(value),
        where=f' (in {where})' if where else '',
        reason=reason or _allowed(opt)) from None


def nova_options(conf: cfg.ConfigOpts):
    """(group name, opt, where to read it) of every option nova.conf
    registers, DEFAULT's included.
    """
    from nova.conf import opts

    for group, group_opts in opts.list_opts():
        gname = getattr(group, 'name', group)
        namespace = conf if gname == 'DEFAULT' else conf[gname]
        for opt in group_opts:
            yield gname, opt, namespace


def check_values(conf: cfg.ConfigOpts) -> None:
    """Read every option once; raise InvalidConfigValue on a bad one.

    An empty value (``option =``) reads as None in oslo.config; it is
    refused for every option that has a default, since no code expects
    None there.
    """
    for gname, opt, namespace in nova_options(conf):
        try:
            value = namespace[opt.dest]
        except cfg.ConfigSourceValueError:
            _refuse(conf, gname, opt)
        if value is None and opt.default is not None:
            _refuse(conf, gname, opt,
                    'a value is required, ' + _allowed(opt) +
                    ' (delete the line to use the default, '
                    f'{opt.default})')


def check_config_file(path: str) -> None:
    """Refuse, in one line, a file oslo.config could not read sanely (read
    with a bound, nova.readfile: a FIFO never blocks it).
    """
    try:
        data = readfile.read(path, MAX_CONFIG_BYTES)
    except FileNotFoundError:
        return  # oslo.config says so itself
    except readfile.Refused as e:
        if e.what == 'too-large':
            raise exception.InvalidConfig(
                reason=f'{shorten(path)} is {e.size} bytes, over the '
                       f'{MAX_CONFIG_BYTES} a configuration file may '
                       'have.') from None
        kind = 'a directory (use --config-dir)' if e.what == 'directory' \
            else 'not a regular file'
        raise exception.InvalidConfig(
            reason=f'{shorten(path)} is {kind}: give a nova.conf '
                   'file.') from None
    except OSError as e:
        raise exception.InvalidConfig(
            reason=f'{shorten(path)} cannot be read: {e.strerror}; check '
                   'its permissions.') from None
    try:
        data.decode('utf-8')
    except UnicodeDecodeError as e:
        raise exception.InvalidConfig(
            reason=f'{shorten(path)} is not UTF-8 text (byte '
                   f'0x{data[e.start]:02x} at offset {e.start}): save it '
                   'as UTF-8.') from None


def _requested_files(argv: list[str], default_config_files,
                     prog: str) -> list[str]:
    """The configuration files ``argv`` (or the defaults) name."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument('--config-file', action='append', default=[])
    pre.add_argument('--config-dir', action='append', default=[])
    known, _ = pre.parse_known_args(argv)
    files = known.config_file or list(
        default_config_files if default_config_files is not None
        else cfg.find_config_files(project='nova', prog=prog))
    for directory in known.config_dir:
        if os.path.isdir(directory):
            files += sorted(glob.glob(os.path.join(directory, '*.conf')))
    return files


def _known_names(conf: cfg.ConfigOpts) -> dict[str, set[str]]:
    """Registered option names by group ('DEFAULT' included): the groups
    are nova.conf's (list_opts()); every other name ``conf`` iterates is a
    DEFAULT option (ours, oslo.log's, oslo.config's own). Only public
    calls: iterating a ConfigOpts and a group gives names, reading none of
    the values (a bad one must not fail here).
    """
    from nova.conf import opts

    groups = {getattr(g, 'name', g) for g, _ in opts.list_opts()}
    groups.discard('DEFAULT')
    names: dict[str, set[str]] = {'DEFAULT': set()}
    for name in conf:
        if name in groups:
            names[name] = set(conf[name])
        else:
            names['DEFAULT'].add(name)
    return names


LOG = logging.getLogger(__name__)


@functools.lru_cache(maxsize=None)
def upstream_options() -> dict[str, frozenset]:
    """{group: option names} of a Nova compute node's nova.conf."""
    found: dict[str, set] = {}
    text = importlib.resources.files('nova.conf').joinpath(
        'nova-options.txt').read_text()
    for line in text.splitlines():
        if line and not line.startswith('#'):
            group, name = line.split()
            found.setdefault(group, set()).add(name)
    return {group: frozenset(names) for group, names in found.items()}


def unknown_options(conf: cfg.ConfigOpts) -> list[str]:
    """One warning per option or section in the files that nothing reads.

    oslo.config ignores them silently, so a misspelt option or one in the
    wrong section would quietly keep its default.
    """
    known = _known_names(conf)
    nova = upstream_options()
    warnings = []
    for path, sections in _parsed_files(conf):
        for section, options in sections.items():
            if section not in known and section in nova:
                LOG.debug('[%s] in %s is a section of Nova\'s: ignored.',
                          section, path)
                continue
            if section not in known:
                close = difflib.get_close_matches(section, known, 1)
                hint = f'; did you mean [{close[0]}]?' if close else '.'
                warnings.append(
                    f'[{shorten(section)}] in {path} is not a section '
                    f'nova-libvirt reads: its options are ignored{hint}')
                continue
            for name in options:
                if name in known[section]:
                    continue
                if name in nova.get(section, ()):
                    LOG.debug('[%s] %s in %s is an option of Nova\'s: '
                              'ignored.', section, name, path)
                    continue
                home = [g for g, opts in known.items() if name in opts]
                if home:
                    hint = f'; it belongs in [{home[0]}]'
                else:
                    close = difflib.get_close_matches(
                        name, known[section], 1)
                    hint = f'; did you mean {close[0]}?' if close else ''
                warnings.append(
                    f'[{section}] {shorten(name)} in {path} is not an '
                    f'option of [{section}] and is ignored{hint}')
    return list(dict.fromkeys(warnings))


def check_files(conf: cfg.ConfigOpts, prog: str) -> cfg.ConfigOpts:
    """Load ``conf``'s configuration files into a scratch ConfigOpts and
    check every value there; InvalidConfig when one is bad. For a service
    that re-reads them: oslo.config cannot undo a mutation, and a bad
    value must not reach (and stop) the running service. The scratch
    ConfigOpts: what the files say now.
    """
    import nova.conf

    scratch = cfg.ConfigOpts()
    nova.conf.register_all(scratch)
    argv = []
    for path in conf.config_file or []:
        argv += ['--config-file', path]
    dirs = conf.config_dir or []
    for path in [dirs] if isinstance(dirs, str) else dirs:
        argv += ['--config-dir', path]
    return parse_args(argv, default_config_files=[], conf=scratch, prog=prog)


def parse_args(argv: list[str], default_config_files=None,
               conf: cfg.ConfigOpts | None = None,
               prog: str = 'nova-libvirt',
               description: str | None = None,
               usage: str | None = None) -> cfg.ConfigOpts:
    """Load configuration from ``argv`` and files, checking every value;
    ``description`` opens ``--help``.
    """
    import nova.conf  # registers the option groups
    conf = conf or nova.conf.CONF
    for path in _requested_files(argv, default_config_files, prog):
        check_config_file(path)
    from nova import version
    try:
        conf(argv, project='nova', prog=prog, description=description,
             usage=usage, default_config_files=default_config_files,
             version=version.version_string())
    except cfg.ConfigFilesNotFoundError as e:
        missing = ', '.join(shorten(p) for p in e.config_files)
        raise exception.InvalidConfig(
            reason=f'{missing} does not exist: give the path of an existing '
                   'file, write one from etc/nova/nova-libvirt.conf.sample '
                   '(every option, commented out), or let '
                   'tools/install-service write /etc/nova/nova.conf.'
        ) from None
    except (cfg.ConfigFileParseError, cfg.ConfigDirNotFoundError) as e:
        raise exception.InvalidConfig(reason=f'{e}.') from None
    check_values(conf)
    return conf
