"""Command-line entry points: nova-libvirt and nova-libvirt-exporter.

Importing an entry point routes libvirt's own log first (it must be set
before libvirt loads, and the commands import libvirt at module level).
"""

from nova.virt import libvirt as _libvirt_package

_libvirt_package.route_libvirt_log()
