"""Validation of what users give: flavor extra specs (``extra_specs``)."""
