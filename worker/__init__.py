"""TelestackDB gateway: a runtime-agnostic core with thin Cloudflare and ASGI entrypoints.

Nothing in this package imports a runtime (``workers``, an ASGI server, ``js``)
outside ``worker/entry.py``, ``worker/asgi.py`` and ``worker/adapters/``.
"""
