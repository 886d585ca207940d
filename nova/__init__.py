"""A standalone slice of OpenStack Nova's libvirt driver: memory statistics.

The package mirrors Nova's in-tree layout so that each module maps onto its
upstream counterpart.
"""
