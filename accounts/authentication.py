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
    sql, columns = _token_join(connection.alias, connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(sql, [key])
        row = cursor.fetchone()
    if row is None:
        return None
    token_key, created, *values = (
        _converted(connection, column, value) for column, value in zip(columns, row, strict=True)
    )
    user_fields = [column.target.attname for column in columns[2:]]
    user = get_user_model().from_db(using, user_fields, values)
    token = Token.from_db(using, ["key", "user_id", "created"], [token_key, user.pk, created])
    Token.user.field.set_cached_value(token, user)
    return user, token


@cache
def _token_join(alias: str, vendor: str) -> tuple[str, tuple]:
    """The join's SQL for one database, and its columns in order (the token's key and
    created, then the user's fields) as the ORM's column expressions."""
    connection = connections[alias]
    quote = connection.ops.quote_name
    user_model = get_user_model()
    token_table, user_table = Token._meta.db_table, user_model._meta.db_table
    columns = (
        Token._meta.get_field("key").get_col(token_table),
        Token._meta.get_field("created").get_col(token_table),
        *(field.get_col(user_table) for field in user_model._meta.concrete_fields),
    )
    selected = ", ".join(
        f"{'t' if column.alias == token_table else 'u'}.{quote(column.target.column)}"
        for column in columns
    )
    user_pk = quote(user_model._meta.pk.column)
    sql = (
        f"SELECT {selected} FROM {quote(token_table)} t"  # noqa: S608 -- model metadata, one placeholder
        f" INNER JOIN {quote(user_table)} u ON u.{user_pk} = t.{quote('user_id')}"
        f" WHERE t.{quote('key')} = %s"
    )
    return sql, columns


def _converted(connection, column, value):
    """A column's value as the ORM would hand it over (SQLite's datetimes, for instance)."""
    for convert in connection.ops.get_db_converters(column) + column.get_db_converters(connection):
        value = convert(value, column, connection)
    return value
