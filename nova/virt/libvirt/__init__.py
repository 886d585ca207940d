"""The libvirt driver: libvirt-python is imported by api.py alone, lazily
(its log routed first); connection.py bounds every call; host.py and
guest.py are what the rest of the driver talks to. Importing this package
does nothing.
"""
