"""Flavor extra specs this slice knows: each described by a registered
validator (``base.ExtraSpecValidator``), grouped by namespace as Nova
groups them (``hw``), checked through ``validators``.
"""
