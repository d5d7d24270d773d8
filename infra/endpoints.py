"""Where clients and the gateway reach each service of a stack, per target.

The local target derives every URL from ``bind_host`` and the ports; a cloud
stack (target docker) names its public URLs in the environment file, since the
gateway runs on Cloudflare and reaches the containers over the internet.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.environment import Environment


@dataclass(frozen=True)
class Endpoints:
    """Where clients and the gateway reach each service ("" = not known before deploy)."""

    gateway_url: str
    centrifugo_api_url: str
    centrifugo_ws_url: str
    #: where the gateway sends S3 calls, and the URL it signs presigned requests for (clients use it)
    s3_endpoint: str
    s3_public_endpoint: str
    auth_url: str

    def client_outputs(self, env: Environment) -> dict[str, str]:
        """The stack outputs clients and the smoke suite read: the same names on every target."""
        return {
            "gateway_url": self.gateway_url,
            "centrifugo_ws_url": self.centrifugo_ws_url,
            "centrifugo_api_url": self.centrifugo_api_url,
            "s3_endpoint": self.s3_public_endpoint,
            "s3_bucket": env.storage.bucket,
            "s3_region": env.storage.region,
            "auth_url": self.auth_url,
        }


def local_endpoints(env: Environment) -> Endpoints:
    """Every URL on ``bind_host`` unless the environment file names a public one."""
    host = env.bind_host if ":" not in env.bind_host else f"[{env.bind_host}]"
    s3 = env.storage.endpoint or f"http://{host}:{env.storage.port}"
    return Endpoints(
        gateway_url=env.gateway.public_url or f"http://{host}:{env.gateway.port}",
        centrifugo_api_url=f"http://{host}:{env.realtime.port}/api",
        centrifugo_ws_url=env.realtime.public_ws_url
        or f"ws://{host}:{env.realtime.port}/connection/websocket",
        s3_endpoint=s3,
        s3_public_endpoint=env.storage.public_endpoint or s3,
        auth_url=f"http://{host}:{env.auth.port}",
    )


def cloud_endpoints(env: Environment) -> Endpoints:
    """The public URLs of a cloud environment (``check_cloud`` requires them); the gateway's URL is the
    Worker's, known only once it is deployed."""
    s3 = env.storage.endpoint or env.storage.public_endpoint
    return Endpoints(
        gateway_url="",
        centrifugo_api_url=_api_url(env.realtime.public_ws_url),
        centrifugo_ws_url=env.realtime.public_ws_url,
        s3_endpoint=s3,
        s3_public_endpoint=env.storage.public_endpoint or s3,
        auth_url=env.auth.public_url,
    )


def _api_url(ws_url: str) -> str:
    """Centrifugo's HTTP API on the same public host as its WebSocket endpoint."""
    scheme, rest = ws_url.split("://", 1)
    host = rest.split("/", 1)[0]
    return f"{'https' if scheme in ('wss', 'https') else 'http'}://{host}/api"
