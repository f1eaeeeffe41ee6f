"""API token authentication with an optional lifetime (settings.API_TOKEN_TTL).

Every API request starts here, so the token and its user are read with one hand-written
join instead of DRF's ``select_related("user").get(key=…)``: the same row and the same
checks, without compiling the ORM's query at every request (docs/benchmarks.md)."""

from __future__ import annotations

from functools import cache

from django.contrib.auth import get_user_model
from django.db import connections, router
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

from accounts import tokens


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's ``Authorization: Token …``, refusing a token older than API_TOKEN_TTL."""

    def authenticate_credentials(self, key):
        found = token_with_user(key)
        if found is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        user, token = found
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        if tokens.token_expired(token):
            token.delete()
            raise exceptions.AuthenticationFailed(
                _("Your API token has expired. Fetch a new one from /api/v1/auth/token/.")
            )
        return user, token


def token_with_user(key: str):
    """(user, token) for the token ``key``, or None: one statement, the user built as the ORM
    builds it (its database converters applied) and cached on the token as ``token.user``."""
    using = router.db_for_read(Token)
    connection = connections[using]
    sql, user_fields = _token_join(connection.alias, connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(sql, [key])
        row = cursor.fetchone()
    if row is None:
        return None
    token_key, created, *values = row
    values = [
        _converted(connection, field, value)
        for field, value in zip(user_fields, values, strict=True)
    ]
    user = get_user_model().from_db(using, [f.attname for f in user_fields], values)
    created = _converted(connection, Token._meta.get_field("created"), created)
    token = Token.from_db(using, ["key", "user_id", "created"], [token_key, user.pk, created])
    Token.user.field.set_cached_value(token, user)
    return user, token


@cache
def _token_join(alias: str, vendor: str) -> tuple[str, tuple]:
    """The join's SQL for one database, and the user fields in the order it selects them."""
    connection = connections[alias]
    quote = connection.ops.quote_name
    user_model = get_user_model()
    user_fields = tuple(user_model._meta.concrete_fields)
    token_table, user_table = quote(Token._meta.db_table), quote(user_model._meta.db_table)
    columns = ", ".join(f"u.{quote(f.column)}" for f in user_fields)
    user_pk = quote(user_model._meta.pk.column)
    sql = (
        f"SELECT t.{quote('key')}, t.{quote('created')}, {columns} "  # noqa: S608 -- model metadata, one placeholder
        f"FROM {token_table} t INNER JOIN {user_table} u ON u.{user_pk} = t.{quote('user_id')} "
        f"WHERE t.{quote('key')} = %s"
    )
    return sql, user_fields


def _converted(connection, field, value):
    """A column's value as the ORM would hand it over (SQLite's datetimes, for instance)."""
    expression = field.get_col(field.model._meta.db_table)
    for convert in connection.ops.get_db_converters(expression) + expression.get_db_converters(
        connection
    ):
        value = convert(value, expression, connection)
    return value
