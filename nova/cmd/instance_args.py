"""The options of nova-libvirt's commands that describe one instance
and its image (name, size, boot files, owner and flavor, flavor extra
specs and image properties), and the Instance and ImageMeta they make,
checked at the edge. Parsing only: building guests is the driver's job.
"""

import argparse
import os

from nova import utils
from nova.api.validation.extra_specs import validators as extra_spec_validators
from nova.cmd import args as args_util
from nova.objects import image_meta as image_meta_obj
from nova.objects import instance as instance_obj


def add_name_arg(parser):
    # dest is not "name": oslo.config keeps the command's name there.
    parser.add_argument('instance_name', metavar='NAME', help='Guest name.')


#: Instance fields set from options of the same name (--display-name ...),
#: and their defaults in words (objects.instance sets them).
OWNER_OPTIONS = (
    ('display_name', 'the guest name'),
    ('project_name', "'standalone'"),
    ('project_id', 'a UUID derived from the project name'),
    ('user_name', 'the user running this command'),
    ('user_id', 'a UUID derived from the user name'),
    ('flavor_name', "'m<MiB>-c<vCPUs>'"),
    ('flavor_id', 'the flavor name'),
)


# The instance's flavor extra specs and image properties, KEY=VALUE each.
KEY_VALUE_OPTIONS = (
    ('--flavor-extra-spec',
     "An extra spec of the instance's flavor, as Nova's flavors carry them "
     '(repeatable); hw:mem_stats_period_seconds=N gives the guest its own '
     'statistics period (0 or below: none).'),
    ('--image-property',
     "A property of the instance's image, as Glance's images carry them "
     '(repeatable); hw_mem_stats_period_seconds=N gives the guest its own '
     "statistics period unless the flavor's says."),
)


def add_instance_args(parser: argparse.ArgumentParser,
                       positional_name: bool = False) -> None:
    """The options that describe one instance and its image."""
    if positional_name:
        add_name_arg(parser)
    else:  # dest: see add_name_arg
        parser.add_argument('--name', dest='instance_name', default='guest',
                            help='Guest name (default: %(default)s).')
    parser.add_argument('--memory-mb',
                        type=args_util.integer(16, 16 * 1024 * 1024),
                        default=256,
                        help='Memory in MiB, at least 16 '
                             '(default: %(default)s).')
    parser.add_argument('--vcpus', type=args_util.integer(1, 4096), default=1,
                        help='Virtual CPUs (default: %(default)s).')
    parser.add_argument('--kernel', metavar='PATH',
                        help='Kernel for direct kernel boot.')
    parser.add_argument('--initrd', metavar='PATH',
                        help='Ramdisk for direct kernel boot.')
    parser.add_argument('--cmdline', metavar='TEXT',
                        help='Kernel command line for direct kernel boot.')
    parser.add_argument('--disk', metavar='PATH',
                        help='Disk image to boot from (for lxc: the root '
                             'directory).')
    parser.add_argument('--disk-format', choices=('raw', 'qcow2'),
                        default='raw',
                        help='Format of --disk (default: %(default)s).')
    for option, text in KEY_VALUE_OPTIONS:
        parser.add_argument(option, metavar='KEY=VALUE', action='append',
                            type=args_util.key_value, help=text)
    owner = parser.add_argument_group(
        "owner and flavor (Nova's instance metadata, which Ceilometer "
        'reads)')
    for field, default in OWNER_OPTIONS:
        owner.add_argument('--' + field.replace('_', '-'), dest=field,
                           metavar='TEXT', help=f'Default: {default}.')


def instance_from_args(args) -> tuple:
    """(Instance, ImageMeta) from parsed instance options, checked."""
    for option, path in (('--kernel', args.kernel),
                         ('--initrd', args.initrd),
                         ('--disk', args.disk)):
        if path is not None and not os.path.exists(path):
            raise args_util.UsageError(
                reason=f'{option} {utils.shorten(path)}: no such file or '
                       'directory.')
    try:
        specs = args_util.key_values(args.flavor_extra_spec,
                                     '--flavor-extra-spec')
        properties = args_util.key_values(args.image_property,
                                          '--image-property')
    except argparse.ArgumentTypeError as e:
        raise args_util.UsageError(reason=f'{e}.') from None
    instance = instance_obj.Instance(
        name=args.instance_name, memory_mb=args.memory_mb, vcpus=args.vcpus,
        flavor_extra_specs=extra_spec_validators.check(specs),
        **{field: getattr(args, field) for field, _ in OWNER_OPTIONS})
    image_meta = image_meta_obj.ImageMeta(
        disk_path=_absolute(args.disk), disk_format=args.disk_format,
        kernel_path=_absolute(args.kernel),
        ramdisk_path=_absolute(args.initrd),
        os_command_line=args.cmdline,
        properties=image_meta_obj.ImageMetaProps.from_dict(properties))
    return instance, image_meta


def _absolute(path):
    return None if path is None else os.path.abspath(path)
