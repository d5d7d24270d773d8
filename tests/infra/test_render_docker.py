"""infra/render_docker.py: what a spec becomes in Docker, apart from any environment.

The per-environment graph is tests/infra/test_cloud_stack.py's; the images' facts are
tests/infra/test_image_facts.py's. Here: the command rule (the image's entrypoint receives
``[program, *args]``), and a health check without a probe command is refused, since which binary
can probe is a fact of the image that only the spec can state.
"""

from __future__ import annotations

import pytest

from infra import render_docker
from infra.spec import HealthCheck, Port, ServiceSpec

VALUES = {"host": "0.0.0.0", "config": "/etc/telestack/svc", "data": "/data/svc"}  # noqa: S104


def test_command_is_program_then_args_with_placeholders_filled() -> None:
    spec = ServiceSpec(name="svc", program="centrifugo", args=("--config", "${config}/config.json"))
    assert render_docker.command(spec, VALUES) == ["centrifugo", "--config", "/etc/telestack/svc/config.json"]


def test_without_a_program_the_args_go_to_the_images_entrypoint() -> None:
    spec = ServiceSpec(name="svc", program="", args=("mini", "-dir=${data}"))
    assert render_docker.command(spec, VALUES) == ["mini", "-dir=/data/svc"]


def test_neither_program_nor_args_leaves_the_images_cmd() -> None:
    assert render_docker.command(ServiceSpec(name="postgres", program=""), VALUES) is None


def test_a_health_check_without_a_probe_command_is_refused_naming_the_spec() -> None:
    spec = ServiceSpec(name="svc", program="x", ports=(Port("http", 80),), health=HealthCheck(port="http"))
    with pytest.raises(ValueError, match=r"^svc: a health check in Docker needs a probe command"):
        render_docker._health(spec)


def test_wait_covers_the_start_period_and_every_retry() -> None:
    check = HealthCheck(port="http", command=("curl", "-f", "http://127.0.0.1/"), start_seconds=180)
    spec = ServiceSpec(name="svc", program="x", ports=(Port("http", 80),), health=check)
    rendered = render_docker._health(spec)
    assert rendered is not None and rendered.tests == ["CMD", "curl", "-f", "http://127.0.0.1/"]
    timeout = render_docker.wait_timeout(spec)
    assert timeout is not None and timeout > 180 + 6 * 10
