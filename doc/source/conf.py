"""Sphinx configuration for the nova-libvirt-memstats documentation."""

project = 'nova-libvirt-memstats'
copyright = '2026, nova-libvirt-memstats developers'
extensions = ['oslo_config.sphinxext']
master_doc = 'index'
exclude_patterns = ['_build']
html_theme = 'alabaster'
# oslo_config.sphinxext renders option help as reStructuredText.
config_generator_config_file = None
