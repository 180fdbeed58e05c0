"""Services for workspaces, products, API keys and provider secrets (tenancy and credentials)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from .auth import hash_key
from .models import ApiKey, Product, ProviderSecret, Workspace
from .money import normalise_currency
from .providers import BUILTIN, registered

# The payment providers offered by set_provider_secret and the API: the provider registry's own
# list, so adding a provider module and its name there is enough (issue #6).
PROVIDERS = BUILTIN


@dataclass(frozen=True)
class IssuedKey:
    """A new key and its secret; the secret exists only here, never in the database."""

    key: ApiKey
    secret: str


def api_key_issue(*, key: ApiKey) -> str:
    """Give an unsaved key a fresh secret, save it, and return the secret (shown once)."""
    prefix = "rf_live_" if key.live else "rf_test_"
    secret = prefix + secrets.token_urlsafe(24)
    key.key_hash = hash_key(secret)
    key.hint = f"{prefix}…{secret[-4:]}"
    key.save()
    return secret


def api_key_create(*, workspace: Workspace, name: str = "default", live: bool = True) -> IssuedKey:
    """Create a key and return its secret once; only the hash is stored."""
    key = ApiKey(workspace=workspace, name=name, live=live)
    return IssuedKey(key=key, secret=api_key_issue(key=key))


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key


@dataclass(frozen=True)
class CreatedWorkspace:
    workspace: Workspace
    product: Product
    api_key: IssuedKey


@transaction.atomic
def workspace_create(*, name: str, base_currency: str = "USD", product_name: str | None = None,
                     product_url: str = "", live: bool = True) -> CreatedWorkspace:
    """Create a workspace with its first product and first API key."""
    workspace = Workspace.objects.create(name=name, base_currency=normalise_currency(base_currency))
    product = Product.objects.create(workspace=workspace, name=product_name or name, url=product_url)
    return CreatedWorkspace(workspace, product, api_key_create(workspace=workspace, live=live))


def provider_secret_set(*, workspace: Workspace, provider: str, secret: str, label: str = "",
                        replace: bool = False) -> ProviderSecret:
    """Add a signing secret; older ones stay valid (rotation) unless ``replace`` revokes them."""
    if provider not in registered():
        raise ValueError(f"unknown provider {provider!r}; expected one of {', '.join(registered())}")
    if not secret or not secret.strip():
        raise ValueError("the secret must not be empty")
    with transaction.atomic():
        if replace:
            ProviderSecret.objects.filter(workspace=workspace, provider=provider, revoked_at=None).update(
                revoked_at=timezone.now())
        return ProviderSecret.objects.create(workspace=workspace, provider=provider,
                                             secret=secret.strip(), label=label)


def provider_secrets(*, workspace_id: str, provider: str) -> list[str]:
    """Return the active secrets of a workspace for a provider, newest first (read at call time)."""
    return list(
        ProviderSecret.objects.filter(workspace_id=workspace_id, provider=provider, revoked_at=None)
        .order_by("-created_at").values_list("secret", flat=True)
    )
