"""Renderers: records in, text or JSON-ready dicts out. Nothing else."""
