"""Command-line entry points: nova-libvirt and nova-libvirt-exporter."""
