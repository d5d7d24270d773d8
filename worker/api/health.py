"""HTTP handlers for health: thin — parse, call the core, shape the JSON."""

from __future__ import annotations

from worker.routing import Route

ROUTES: list[Route] = []
