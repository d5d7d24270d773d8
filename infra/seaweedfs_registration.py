"""Whether SeaweedFS can serve its stored objects: the master knows the volume server and its volumes.

A restarted ``weed mini`` answers on its S3 port before that is true. Its volume
server keeps ``/healthz`` at 200 while it retries its first heartbeat (the flag it
reads means "heartbeat loop running", not "registered"), and ``weed mini`` starts
the filer and S3 once the volume port merely answers. Until the master has the
volume server's heartbeat, a read of an existing object finds no location for its
volume and S3 answers 500 InternalError. So readiness compares the volume server's
own ``/status`` (the volumes it loaded from disk) with the master's ``/dir/status``
(the data nodes and volume ids it has registered).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

#: the probe talks to the loopback address directly, whatever HTTP(S)_PROXY says
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def local_volume_ids(volume_status: dict[str, Any]) -> set[int]:
    """Ids of the volumes a volume server loaded (its ``/status`` document; ``Volumes`` is null when none)."""
    return {int(v["Id"]) for v in volume_status.get("Volumes") or []}


def _ids(listed: str) -> tuple[set[int], bool]:
    """Parse the master's ``VolumeIds`` text (``" 1-3 5 7-9"``, each disk's first 100 then ``" ..."``)."""
    ids: set[int] = set()
    truncated = False
    for item in listed.split():
        if item == "...":
            truncated = True
            continue
        first, _, last = item.partition("-")
        ids.update(range(int(first), int(last or first) + 1))
    return ids, truncated


def _data_node(dir_status: dict[str, Any], data_node: str) -> dict[str, Any] | None:
    topology = dir_status.get("Topology") or {}
    for dc in topology.get("DataCenters") or []:
        for rack in dc.get("Racks") or []:
            for node in rack.get("DataNodes") or []:
                if node.get("Url") == data_node:
                    return dict(node)
    return None


def volumes_registered(volume_status: dict[str, Any], dir_status: dict[str, Any], data_node: str) -> bool:
    """The master lists ``data_node`` (``host:port``) with every volume that node loaded."""
    node = _data_node(dir_status, data_node)
    if node is None:
        return False
    local = local_volume_ids(volume_status)
    known, truncated = _ids(str(node.get("VolumeIds") or ""))
    if truncated:  # more than 100 on a disk: the ids shown are a prefix, the count is whole
        return known <= local and int(node.get("Volumes") or 0) >= len(local)
    return local <= known


def _get_json(url: str, timeout: float) -> dict[str, Any] | None:
    try:
        with _NO_PROXY.open(url, timeout=timeout) as resp:
            return dict(json.loads(resp.read()))
    except (OSError, ValueError, urllib.error.HTTPError):
        return None


def ready(host: str, master_port: int, volume_port: int, timeout: float = 2.0) -> bool:
    """Ask the running volume server and master whether every stored volume is registered."""
    volume_status = _get_json(f"http://{host}:{volume_port}/status", timeout)
    if volume_status is None:
        return False
    dir_status = _get_json(f"http://{host}:{master_port}/dir/status", timeout)
    return dir_status is not None and volumes_registered(volume_status, dir_status, f"{host}:{volume_port}")
