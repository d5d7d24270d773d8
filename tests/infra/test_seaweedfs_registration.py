"""infra/seaweedfs_registration.py: when the master lists every volume the volume server loaded.

The documents are shaped as ``weed`` 4.48 answers them (volume server ``/status``, master
``/dir/status``); tests/integration/test_seaweedfs_readiness.py runs the check against a real one.
"""

from __future__ import annotations

from typing import Any

from infra import render_local, services
from infra.seaweedfs_registration import local_volume_ids, volumes_registered
from tests.support.local_mocks import local_paths, mocked_local_settings, without_toolchain

NODE = "127.0.0.1:8080"


def _volume_status(*ids: int) -> dict[str, Any]:
    volumes = [{"Collection": "b", "Id": i, "FileCount": 1, "ReadOnly": False} for i in ids]
    return {"Version": "8000GB 4.48", "Volumes": volumes or None}


def _dir_status(*nodes: tuple[str, str]) -> dict[str, Any]:
    data_nodes = [
        {"Url": url, "PublicUrl": url, "Volumes": len(ids.split()), "Max": 66, "VolumeIds": ids}
        for url, ids in nodes
    ]
    rack = {"Id": "DefaultRack", "DataNodes": data_nodes}
    return {"Topology": {"Max": 66, "DataCenters": [{"Id": "DefaultDataCenter", "Racks": [rack]}]}}


def test_a_fresh_server_counts_once_the_master_lists_its_node() -> None:
    assert local_volume_ids(_volume_status()) == set()
    assert not volumes_registered(_volume_status(), {"Topology": {"DataCenters": None}}, NODE)
    assert not volumes_registered(_volume_status(), _dir_status(("127.0.0.1:9999", " ")), NODE)
    assert volumes_registered(_volume_status(), _dir_status((NODE, " ")), NODE)


def test_every_loaded_volume_must_be_listed_ranges_included() -> None:
    loaded = _volume_status(1, 2, 3, 5, 7, 8, 9)
    assert volumes_registered(loaded, _dir_status((NODE, " 1-3 5 7-9")), NODE)
    assert not volumes_registered(loaded, _dir_status((NODE, " 1-3 7-9")), NODE), "volume 5 missing"
    assert not volumes_registered(loaded, _dir_status((NODE, " ")), NODE), "node before its volumes"


def test_a_truncated_list_falls_back_to_the_count() -> None:
    loaded = _volume_status(*range(1, 106))
    listed = " 1-100 ..."  # the master shows a disk's first 100 ids
    full = _dir_status((NODE, listed))
    full["Topology"]["DataCenters"][0]["Racks"][0]["DataNodes"][0]["Volumes"] = 105
    assert volumes_registered(loaded, full, NODE)
    full["Topology"]["DataCenters"][0]["Racks"][0]["DataNodes"][0]["Volumes"] = 104
    assert not volumes_registered(loaded, full, NODE)


def test_the_local_seaweedfs_waits_for_registration_and_no_other_service_changes(
    tmp_path: Any, monkeypatch: Any
) -> None:
    without_toolchain(monkeypatch)
    s = mocked_local_settings(tmp_path)
    props = {spec.name: render_local.process_props(spec, local_paths(s)) for spec in services.local_stack(s)}
    assert props["seaweedfs"]["health"]["path"] == "/healthz"
    (ready,) = props["seaweedfs"]["ready"]
    assert ready["kind"] == "seaweedfs_volumes"
    assert (ready["port"], ready["volume_port"]) == ("master", "volume")
    # a key absent elsewhere: adding it restarts no other service on the next `pulumi up`
    assert [name for name, p in props.items() if "ready" in p] == ["seaweedfs"]
