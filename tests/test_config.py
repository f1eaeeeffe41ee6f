"""Production settings refuse unsafe starts and pass Django's deployment checks."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent


def run_manage(*args, **env):
    full_env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DJANGO_SETTINGS_MODULE", "SECRET_KEY", "CARD_VAULT_KEYS"}
    }
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_refuses_to_start_without_a_real_secret_key():
    result = run_manage("check", DEBUG="false", CARD_VAULT_KEYS=Fernet.generate_key().decode())
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr


def test_production_refuses_to_start_without_vault_keys():
    result = run_manage("check", DEBUG="false", SECRET_KEY=secrets.token_urlsafe(50))
    assert result.returncode != 0 and "CARD_VAULT_KEYS" in result.stderr


def test_check_deploy_is_clean_with_production_variables():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        CARD_VAULT_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="cardex.example.com",
        CACHE_URL="redis://127.0.0.1:6379/1",
        STAFF_TOTP_REQUIRED="true",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_while_staff_may_enter_admin_with_a_password_alone():
    result = run_manage(
        "check",
        "--deploy",
        **production_env(CACHE_URL="redis://127.0.0.1:6379/1", STAFF_TOTP_REQUIRED="false"),
    )
    assert "accounts.W002" in result.stdout + result.stderr


def test_check_deploy_warns_when_throttles_would_count_per_process():
    result = run_manage(
        "check",
        "--deploy",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        CARD_VAULT_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="cardex.example.com",
    )
    assert "accounts.W001" in result.stdout + result.stderr


def test_makemigrations_is_clean():
    result = run_manage("makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr


def production_env(**extra):
    return {
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "CARD_VAULT_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "cardex.example.com",
        **extra,
    }


SANDBOX_PROBE = (
    "from django.conf import settings; from django.urls import Resolver404, resolve\n"
    "try:\n    resolve('/sandbox/'); mounted = True\nexcept Resolver404:\n    mounted = False\n"
    "print('installed' if 'payments.sandbox' in settings.INSTALLED_APPS else 'absent', "
    "'mounted' if mounted else 'unmounted')"
)


def test_the_sandbox_is_off_in_production_unless_asked_for():
    result = run_manage("shell", "--no-imports", "-c", SANDBOX_PROBE, **production_env())
    assert result.stdout.split() == ["absent", "unmounted"], result.stderr


def test_the_sandbox_is_on_with_debug_and_when_asked_for():
    assert run_manage(
        "shell", "--no-imports", "-c", SANDBOX_PROBE, DEBUG="true"
    ).stdout.split() == ["installed", "mounted"]
    asked = run_manage(
        "shell", "--no-imports", "-c", SANDBOX_PROBE, **production_env(PAYMENTS_SANDBOX="true")
    )
    assert asked.stdout.split() == ["installed", "mounted"], asked.stderr


def test_check_deploy_warns_when_the_sandbox_is_on_without_debug():
    result = run_manage(
        "check", "--deploy", "--fail-level", "WARNING", **production_env(PAYMENTS_SANDBOX="true")
    )
    assert result.returncode != 0 and "sandbox.W001" in result.stderr + result.stdout


def test_postgresql_connections_are_pooled_in_production():
    probe = "from django.conf import settings; print(settings.DATABASES['default']['OPTIONS'])"
    result = run_manage(
        "shell",
        "--no-imports",
        "-c",
        probe,
        **production_env(DATABASE_URL="postgres://u@127.0.0.1:5432/x", DB_POOL_MAX_SIZE="6"),
    )
    assert "'pool'" in result.stdout and "'max_size': 6" in result.stdout, result.stderr


def test_database_connections_are_checked_before_use_so_a_restart_is_survived():
    from django.conf import settings

    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is True
