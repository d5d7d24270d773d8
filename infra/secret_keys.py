"""The secret stack-config keys, one catalog per kind of stack, and the secret outputs a stack exports.

``scripts/secrets.py`` generates each missing key (by its generator kind),
``Pulumi.yaml`` declares each one, :mod:`infra.settings` reads them, and
``scripts/ops rotate-secrets`` sets the ``*Previous`` keys of a rotation window.
"""

from __future__ import annotations

from infra.environment import Environment

#: Secret stack-config keys (project namespace ``telestack``) -> (description, generator kind).
#: scripts/secrets.py generates each missing one; Pulumi.yaml declares each as a secret.
SECRET_KEYS: dict[str, tuple[str, str]] = {
    "adminKey": ("gateway admin key (bypasses RLS)", "token"),
    "centrifugoApiKey": ("Centrifugo HTTP API key", "token"),
    "centrifugoTokenSecret": ("HMAC secret signing Centrifugo connection tokens", "token"),
    "s3AccessKeyId": ("S3 access key id of the stack's storage identity", "access_key"),
    "s3SecretAccessKey": ("S3 secret access key of the stack's storage identity", "secret_key"),
    "authApiKey": ("API key between the gateway and SuperTokens Core (CDI)", "token"),
}

#: Optional secret stack-config keys of a rotation's overlap window (``<key>Previous``, set by
#: ``scripts/ops rotate-secrets``) -> :class:`infra.settings.Secrets` field, and the plain window-end
#: keys (unix s).
#: Pulumi.yaml declares each with ``default: ""`` / ``0``: Pulumi refuses a secret key with a default,
#: and a declared key without one would be required, so "unset" reads as empty here.
PREVIOUS_SECRET_KEYS: dict[str, str] = {
    "centrifugoTokenSecretPrevious": "centrifugo_token_secret_previous",
    "adminKeyPrevious": "admin_key_previous",
    "s3AccessKeyIdPrevious": "s3_access_key_id_previous",
    "s3SecretAccessKeyPrevious": "s3_secret_access_key_previous",
    "authApiKeyPrevious": "auth_api_key_previous",
}
PREVIOUS_UNTIL_KEYS: dict[str, str] = {
    "centrifugoTokenSecretPreviousValidUntil": "centrifugo_token_secret_previous_valid_until",
    "adminKeyPreviousValidUntil": "admin_key_previous_valid_until",
}

#: Optional secret stack-config key: the identity providers' client secrets as JSON ``{name: secret}``.
#: Not generated (each secret comes from its provider's console); docs/runbooks.md says how to set it.
OAUTH_SECRET_KEY = "oauthClientSecrets"  # noqa: S105 - a config key's name


#: Secret stack-config keys cloud stacks (target docker) need on top of SECRET_KEYS.
CLOUD_SECRET_KEYS: dict[str, tuple[str, str]] = {
    "postgresPassword": ("password of SuperTokens Core's PostgreSQL user", "token"),
}
#: ... and those a cloud stack with ``storage.kind: minio`` needs too. MinIO's root pair is its own,
#: not the stack's S3 identity (s3AccessKeyId), which the minio-bucket job makes an ordinary user: so
#: rotating the S3 keys never restarts MinIO, and a rotation window can keep a second user.
MINIO_SECRET_KEYS: dict[str, tuple[str, str]] = {
    "minioRootUser": ("MinIO root user (only the minio-bucket job uses it)", "access_key"),
    "minioRootPassword": ("MinIO root password (only the minio-bucket job uses it)", "secret_key"),
}


#: ... and those a cloud stack with ``mail`` needs: the key between the Worker and its mail relay
MAIL_SECRET_KEYS: dict[str, tuple[str, str]] = {
    "mailRelayKey": ("send-API key between the gateway Worker and the stack's mail relay (Mailpit)", "token"),
}
#: Optional secret stack-config keys: the SMTP provider's credentials the mail relay logs in with
#: (required by a cloud stack whose ``mail.provider.auth`` is not ``none``). Not generated: they come from
#: the provider; docs/runbooks.md "Configure SMTP" says how to set them. Key -> CloudRefs field.
SMTP_SECRET_KEYS: dict[str, str] = {"smtpUsername": "smtp_username", "smtpPassword": "smtp_password"}


def cloud_secret_keys(env: Environment) -> dict[str, tuple[str, str]]:
    """The secret keys a cloud environment needs on top of SECRET_KEYS (scripts/secrets.py generates them)."""
    return {**CLOUD_SECRET_KEYS, **(MINIO_SECRET_KEYS if env.storage.kind == "minio" else {}),
            **(MAIL_SECRET_KEYS if env.mail is not None else {})}


#: :class:`infra.settings.Secrets` fields every stack exports as secret outputs
#: (``pulumi stack output --show-secrets <name>``): what a client or an ops runbook needs to reach the stack.
SECRET_OUTPUTS: tuple[str, ...] = (
    "admin_key",
    "centrifugo_api_key",
    "centrifugo_token_secret",
    "s3_access_key_id",
    "s3_secret_access_key",
    "auth_api_key",
)
