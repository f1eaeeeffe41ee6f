#!/usr/bin/env python
"""How many SQL queries the catalogue page costs as the catalogue grows (it must not grow).

Builds a scratch SQLite database (or the one ``--database-url`` names — never point it at
data you care about: it is migrated and filled), adds listings with stock from several
sellers and brands, and renders ``/`` (plus a filtered and a sorted variant) with Django's
test client at each size, counting queries and timing the render.

    .venv/bin/python bench/catalogue_queries.py
    .venv/bin/python bench/catalogue_queries.py --sizes 10 100 1000 5000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
warnings.filterwarnings("ignore", message="CARD_VAULT_KEYS is not set")

PAGES = ["/", "/?category=game&sort=price", "/?q=brand&face_value_min=50&sort=-price"]


def grow_to(size: int, state: dict) -> None:
    from decimal import Decimal

    from accounts.models import User
    from marketplace import vault
    from marketplace.models import Brand, CardCode, Category, Listing

    if not state:
        state["sellers"] = [
            User.objects.create_user(f"cat-seller-{i}", password="x") for i in range(20)
        ]
        categories = list(Category.values)
        state["brands"] = [
            Brand.objects.create(
                name=f"Brand {i}", slug=f"brand-{i}", category=categories[i % len(categories)]
            )
            for i in range(15)
        ]
        state["token"] = vault.encrypt("CATALOGUECODE")
        state["n"] = 0
    listings = []
    for i in range(state["n"], size):
        listings.append(
            Listing(
                seller=state["sellers"][i % 20],
                brand=state["brands"][i % 15],
                face_value=Decimal(50 * (1 + i % 10)),
                price=Decimal(50 * (1 + i % 10)) * Decimal("0.9"),
            )
        )
    Listing.objects.bulk_create(listings)
    codes = [
        CardCode(
            listing=listing, code_encrypted=state["token"], fingerprint=f"cat-{listing.pk}-{k}"
        )
        for listing in listings
        for k in range(3)
    ]
    CardCode.objects.bulk_create(codes, batch_size=5000)
    state["n"] = size


def measure(client, path: str) -> tuple[int, float]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        began = time.perf_counter()
        response = client.get(path)
        elapsed = time.perf_counter() - began
    assert response.status_code == 200, response.status_code
    return len(captured.captured_queries), elapsed * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 5000])
    parser.add_argument("--database-url", default="sqlite:////tmp/cardex-catalogue-bench.sqlite3")
    args = parser.parse_args()
    if args.database_url.startswith("sqlite:////"):
        Path(args.database_url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    os.environ["DATABASE_URL"] = args.database_url
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    settings.ALLOWED_HOSTS = ["testserver"]
    call_command("migrate", verbosity=0)
    client = Client()
    state: dict = {}
    vendor = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    print(f"catalogue queries per page view ({vendor}); 3 codes per listing, 24 listings per page")
    print(f"{'listings':>8} " + " ".join(f"{path:>42}" for path in PAGES))
    for size in sorted(args.sizes):
        grow_to(size, state)
        cells = []
        for path in PAGES:
            measure(client, path)  # warm
            queries, ms = measure(client, path)
            cells.append(f"{queries:>3} queries {ms:>8.1f} ms".rjust(42))
        print(f"{size:>8} " + " ".join(cells))


if __name__ == "__main__":
    main()
