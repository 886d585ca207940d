"""Command-line entry points: nova-libvirt and nova-libvirt-exporter.

Importing any of these modules sets nothing up. The console scripts enter
through nova.cmd.launch, which routes libvirt's own log before the command
(and with it libvirt) is imported.
"""
