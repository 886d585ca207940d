"""Command-line entry points: nova-libvirt and nova-libvirt-exporter.

Importing any of these modules sets nothing up. The console scripts are
each command's ``run()``; libvirt loads when a command first needs it
(nova.virt.libvirt.api), its own log routed then.
"""
