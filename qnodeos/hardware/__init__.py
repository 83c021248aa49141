"""Devices as data: specs (kinds, gates, topology) and literature parameter sets."""
