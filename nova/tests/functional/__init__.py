"""Functional tests: real QEMU, real libvirtd, real HTTP clients.

libvirt's log goes to the temporary file nova/tests/__init__.py names, set
before anything imports libvirt.
"""
