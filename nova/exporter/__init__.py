"""nova-libvirt-exporter: guests' memory statistics for Prometheus.

``metrics`` turns the collector's rows into metric families; ``service``
runs the process (HTTP server, signals, reload). The collector
(nova.virt.libvirt.memstats) never imports this package.
"""
