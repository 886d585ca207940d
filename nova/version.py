"""The version of this package, as Nova's ``<nova:package>`` names it."""

import importlib.metadata


def version_string() -> str:
    try:
        return importlib.metadata.version('nova-libvirt-memstats')
    except importlib.metadata.PackageNotFoundError:
        return 'unknown'
