"""Thin HTTP handlers, one module per resource; the logic lives in the core modules."""
