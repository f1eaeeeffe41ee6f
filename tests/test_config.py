"""Production settings refuse unsafe starts and pass Django's deployment checks."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent


def run_manage(*args, **env):
    full_env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "SECRET_KEY", "CARD_VAULT_KEYS"}}
    full_env.update(env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=120)


def test_production_refuses_to_start_without_a_real_secret_key():
    result = run_manage("check", DEBUG="false", CARD_VAULT_KEYS=Fernet.generate_key().decode())
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr


def test_production_refuses_to_start_without_vault_keys():
    result = run_manage("check", DEBUG="false", SECRET_KEY=secrets.token_urlsafe(50))
    assert result.returncode != 0 and "CARD_VAULT_KEYS" in result.stderr


def test_check_deploy_is_clean_with_production_variables():
    result = run_manage(
        "check", "--deploy", "--fail-level", "WARNING",
        DEBUG="false", SECRET_KEY=secrets.token_urlsafe(50), CARD_VAULT_KEYS=Fernet.generate_key().decode(), ALLOWED_HOSTS="cardex.example.com",
        CACHE_URL="redis://127.0.0.1:6379/1",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_when_throttles_would_count_per_process():
    result = run_manage(
        "check", "--deploy",
        DEBUG="false", SECRET_KEY=secrets.token_urlsafe(50),
        CARD_VAULT_KEYS=Fernet.generate_key().decode(), ALLOWED_HOSTS="cardex.example.com",
    )
    assert "accounts.W001" in result.stdout + result.stderr


def test_makemigrations_is_clean():
    result = run_manage("makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
