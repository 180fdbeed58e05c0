"""API-key authentication: ``Authorization: Bearer rf_live_…`` resolves to one workspace."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.db import connection
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from .models import ApiKey, Workspace

KEY_PREFIXES = ("rf_live_", "rf_test_")
_TOUCH_EVERY = timedelta(seconds=60)


def hash_key(secret: str) -> str:
    """Return the stored form of a secret key. Keys carry 190 random bits, so SHA-256 suffices."""
    return hashlib.sha256(secret.encode()).hexdigest()


_KEY_QUERY: dict[str, tuple[str, list[tuple[object, list]]]] = {}
_KEY_ATTNAMES = [f.attname for f in ApiKey._meta.concrete_fields]
_WORKSPACE_ATTNAMES = [f.attname for f in Workspace._meta.concrete_fields]


def _key_query() -> tuple[str, list[tuple[object, list]]]:
    """The lookup's SQL, and for each column the converters the ORM's compiler would apply to it
    (SQLite datetimes and booleans; none on PostgreSQL), worked out once per database vendor."""
    found = _KEY_QUERY.get(connection.vendor)
    if found is not None:
        return found
    key_fields, ws_fields = list(ApiKey._meta.concrete_fields), list(Workspace._meta.concrete_fields)
    quote = connection.ops.quote_name
    k, w = quote(ApiKey._meta.db_table), quote(Workspace._meta.db_table)
    columns = [f"{k}.{quote(f.column)}" for f in key_fields] + [f"{w}.{quote(f.column)}" for f in ws_fields]
    sql = (f"SELECT {', '.join(columns)} FROM {k} INNER JOIN {w} "
           f"ON {w}.{quote(Workspace._meta.pk.column)} = {k}.{quote(ApiKey._meta.get_field('workspace').column)} "
           f"WHERE {k}.{quote(ApiKey._meta.get_field('key_hash').column)} = %s")
    converters = []
    for f in (*key_fields, *ws_fields):
        col = f.cached_col
        converters.append((col, connection.ops.get_db_converters(col) + col.get_db_converters(connection)))
    found = _KEY_QUERY[connection.vendor] = (sql, converters)
    return found


def _key_by_hash(key_hash: str) -> ApiKey | None:
    """The key and its workspace in one plain query, built once from the models' metadata.

    Every API request runs it; compiling ``select_related(...).first()`` each time cost a third of
    the lookup's CPU, and asking each field for its converters again on every request a good part
    of the rest. ``Model.from_db`` builds the same instances the ORM would.
    """
    sql, converters = _key_query()
    with connection.cursor() as cursor:
        cursor.execute(sql, [key_hash])
        row = cursor.fetchone()
    if row is None:
        return None
    converted = []
    for (col, apply), value in zip(converters, row, strict=True):
        for converter in apply:
            value = converter(value, col, connection)
        converted.append(value)
    split = len(_KEY_ATTNAMES)
    key = ApiKey.from_db(connection.alias, _KEY_ATTNAMES, converted[:split])
    key.workspace = Workspace.from_db(connection.alias, _WORKSPACE_ATTNAMES, converted[split:])
    return key


class KeyPrincipal:
    """Who is calling: a workspace through one of its keys (stands in ``request.user``)."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, key: ApiKey) -> None:
        self.key = key
        self.workspace: Workspace = key.workspace
        self.workspace_id: str = key.workspace_id

    def __str__(self) -> str:
        return f"api-key:{self.key.id}"


class ApiKeyAuthentication(BaseAuthentication):
    """Missing, unknown or revoked key → 401."""

    def authenticate(self, request: Request) -> tuple[KeyPrincipal, ApiKey] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token.startswith(KEY_PREFIXES):
            raise exceptions.AuthenticationFailed("Expected 'Authorization: Bearer rf_live_…'.")
        key = _key_by_hash(hash_key(token))
        if key is None or key.revoked_at is not None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > _TOUCH_EVERY:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now
        return KeyPrincipal(key), key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="refairn"'


class HasWorkspaceKey(BasePermission):
    """Allow only requests authenticated by an API key."""

    def has_permission(self, request: Request, view: object) -> bool:
        if not isinstance(request.auth, ApiKey):
            raise exceptions.NotAuthenticated("An API key is required: 'Authorization: Bearer rf_live_…'.")
        return True


def request_workspace(request: Request) -> Workspace:
    """Return the workspace of the calling key."""
    return request.auth.workspace


def check_business_id(request: Request, business_id: object) -> None:
    """Refuse (403) a body whose ``businessId`` names another workspace than the key's."""
    if business_id != request.auth.workspace_id:
        raise exceptions.PermissionDenied("businessId does not match the API key's workspace.")
