"""What handlers work with: the isolate's :class:`Gateway` and one request's :class:`Context`.

The Gateway holds typed settings, the runtime's database and HTTP adapters, and
the services built from them. An entrypoint builds one per isolate (Workers) or
process (ASGI); each service is built on first use and then shared by every
request, so a cold start pays only for what its first request needs.

A request's queries (``ctx.db``) run in one database session started from the
client's :data:`BOOKMARK_HEADER`; the dispatcher returns the session's newest
bookmark in the same header (see :mod:`worker.database`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from worker.auth import SessionAuthenticator
from worker.centrifugo import CentrifugoApi
from worker.collections import Registry
from worker.database import DatabaseSession, SessionDatabase
from worker.health import Health
from worker.http import Request
from worker.outbound import HttpClient
from worker.outbox import Publisher
from worker.principal import Principal
from worker.rate_limits import RateLimiter
from worker.settings import Settings
from worker.signatures import SignatureVerifier
from worker.user_metadata import MetadataRules

if TYPE_CHECKING:
    from worker.mail import Mailer
    from worker.oauth import OAuthFlows
    from worker.supertokens import SuperTokens

#: the read-consistency bookmark: read from the request, returned on the response
BOOKMARK_HEADER = "x-telestack-bookmark"


def cpython_signatures() -> SignatureVerifier:
    """PyJWT's RSA, for every Gateway built under CPython (the Workers entrypoint passes WebCrypto)."""
    from worker.adapters.pyjwt_signatures import PyJwtSignatures

    return PyJwtSignatures()


@dataclass(eq=False)
class Gateway:
    settings: Settings
    #: the primary (sweeps, health, migrations); requests use ``Context.db``, a session of it
    db: SessionDatabase
    http: HttpClient
    #: verifies access-token signatures: the runtime's own crypto
    signatures: SignatureVerifier = field(default_factory=cpython_signatures)

    @cached_property
    def collections(self) -> Registry:
        """The collections registry, parsed and its schemas compiled once from ``COLLECTIONS``."""
        return Registry.from_json(self.settings.collections_json)

    @cached_property
    def supertokens(self) -> SuperTokens:
        """The CDI client of the auth core (ApiError 503 while ``AUTH_URL`` is not set)."""
        from worker.supertokens import SuperTokens

        s = self.settings
        return SuperTokens(self.http, s.auth_url, s.auth_api_key)

    @cached_property
    def authenticator(self) -> SessionAuthenticator:
        """Turns a request into a Principal: the admin key, or a session token checked against the JWKS."""
        jwks = None
        if self.settings.auth_url:
            from worker.jwks import JwksCache  # lazily: a gateway without AUTH_URL never needs it

            jwks = JwksCache(self.supertokens.jwks, self.signatures)
        return SessionAuthenticator(self.settings, jwks)

    @cached_property
    def metadata_rules(self) -> MetadataRules:
        """The size limit and schema user metadata must meet (``AUTH_CONFIG``, from config/auth.yaml)."""
        return MetadataRules.from_json(self.settings.auth_config_json)

    @cached_property
    def rate_limiter(self) -> RateLimiter:
        """Auth attempt limits, counted in this gateway's database (shared by every isolate)."""
        return RateLimiter()

    @cached_property
    def oauth(self) -> OAuthFlows:
        """Sign-in through identity providers; ApiError 404 while none is configured."""
        from worker.http import ApiError
        from worker.oauth import OAuthFlows
        from worker.oidc_providers import ProviderConfigError, parse_providers

        s = self.settings
        try:
            providers = parse_providers(s.oauth_providers_json, s.oauth_client_secrets)
        except ProviderConfigError as exc:  # a deploy-time mistake: say which key, never the secret
            raise ApiError(503, "oauth_misconfigured", str(exc)) from None
        if not providers or not s.oauth_callback_base_url:
            raise ApiError(404, "oauth_not_configured", "this environment has no identity providers")
        return OAuthFlows(self.db, self.http, self.signatures, providers, s.oauth_redirect_uris,
                          s.oauth_callback_base_url)

    @cached_property
    def centrifugo(self) -> CentrifugoApi | None:
        """Centrifugo's server API; None when realtime is not configured (events stay in the outbox)."""
        return CentrifugoApi.from_settings(self.settings, self.http)

    @cached_property
    def publisher(self) -> Publisher:
        """Publishes the outbox: after writes, and on the sweep (cron trigger or ASGI lifespan task)."""
        return Publisher(self.db, self.centrifugo, self.collections.access_rules(),
                         per_write=self.settings.outbox_drain_per_request)

    @cached_property
    def mailer(self) -> Mailer | None:
        """Verification and reset mail: the stack's relay over HTTP when ``MAIL_RELAY_URL`` is set (the
        only way on Workers), else SMTP when ``SMTP_HOST`` is; None = no mail (see worker/mail.py)."""
        if self.settings.mail_relay_url:
            from worker.mail_relay import RelayMailer

            return RelayMailer.from_settings(self.settings, self.http)
        if not self.settings.smtp_host:
            return None
        from worker.adapters.smtp import SmtpMailer  # lazily: only a stack that sends mail loads smtplib

        return SmtpMailer.from_settings(self.settings)

    @cached_property
    def health(self) -> Health:
        return Health(self.settings, self.db, self.http, self.centrifugo)


@dataclass(eq=False)
class Context:
    gateway: Gateway
    request: Request
    params: dict[str, str]
    #: set when the handler committed outbox rows: the dispatcher hands their publishing to the
    #: runtime to run once the response is sent (see worker/app.py)
    publish_after_response: bool = False
    _principal: Principal | None = None
    _session: DatabaseSession | None = None

    @property
    def settings(self) -> Settings:
        return self.gateway.settings

    @property
    def db(self) -> DatabaseSession:
        """This request's database session, opened on first use from the client's bookmark.

        Raises :class:`~worker.database.InvalidBookmark` (400) for a bookmark the database never issued.
        """
        if self._session is None:
            given = (self.request.header(BOOKMARK_HEADER) or "").strip() or None
            writes = self.request.method not in ("GET", "HEAD")
            self._session = self.gateway.db.session(given, writes=writes)
        return self._session

    def bookmark(self) -> str | None:
        """The newest state this request's queries saw or wrote; None if it opened no session."""
        return self._session.bookmark() if self._session is not None else None

    async def principal(self) -> Principal:
        """The verified caller; raises ApiError(401) when there is none."""
        if self._principal is None:
            self._principal = await self.gateway.authenticator.authenticate(self.request)
        return self._principal
