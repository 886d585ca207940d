"""Loading the configuration: parse the command line and files, then check.

oslo.config converts a value only when it is first read, so a bad value in
nova.conf would surface at the first guest start. ``parse_args`` reads every
registered option once, at load, and turns any refusal into one message
that names the option, the value, where it came from and what is allowed.
"""

import glob
import os

from oslo_config import cfg
from oslo_config import types

from nova import exception


def _allowed(opt: cfg.Opt) -> str:
    """What ``opt`` accepts, in words."""
    kind = opt.type
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


def _raw_value(conf: cfg.ConfigOpts, group: str, name: str):
    """The text that set ``[group] name`` in a file, and that file.

    oslo.config cannot tell a bad value's location without converting it
    (and failing again), so the files are read as text here.
    """
    found = None, None
    for path in _config_files(conf):
        sections: dict = {}
        try:
            cfg.ConfigParser(path, sections).parse()
        except (OSError, cfg.ParseError):
            continue
        values = sections.get(group, {}).get(name)
        if values:
            found = values[-1], path
    return found


def check_values(conf: cfg.ConfigOpts) -> None:
    """Read every option once; raise InvalidConfigValue on a bad one."""
    from nova.conf import opts

    for group, group_opts in opts.list_opts():
        gname = getattr(group, 'name', group)
        namespace = conf if gname == 'DEFAULT' else conf[gname]
        for opt in group_opts:
            try:
                namespace[opt.dest]
            except cfg.ConfigSourceValueError:
                value, where = _raw_value(conf, gname, opt.dest)
                raise exception.InvalidConfigValue(
                    group=gname, option=opt.dest,
                    value=value if value is not None else '(unreadable)',
                    where=f' (in {where})' if where else '',
                    reason=_allowed(opt)) from None


def parse_args(argv: list[str], default_config_files=None,
               conf: cfg.ConfigOpts | None = None) -> cfg.ConfigOpts:
    """Load configuration from ``argv`` and files, checking every value."""
    import nova.conf  # registers the option groups
    conf = conf or nova.conf.CONF
    try:
        conf(argv, project='nova', prog='nova-libvirt',
             default_config_files=default_config_files)
    except (cfg.ConfigFilesNotFoundError, cfg.ConfigFileParseError,
            cfg.ConfigDirNotFoundError) as e:
        raise exception.InvalidConfig(reason=f'{e}.') from None
    check_values(conf)
    return conf
