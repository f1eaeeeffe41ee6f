"""``manage.py seed_demo [--json]``: demo data for a fresh machine (CONTRACT.md). Idempotent:
running it again resets the demo passwords, keeps what exists and tops listings up to
their demo stock, so the printed logins always work."""

from __future__ import annotations

import json
import secrets
import string
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from marketplace.code_formats import CodeInput, luhn_valid
from marketplace.models import Brand, CardCode, Category, Listing
from marketplace.services import listing_codes_add, listing_create

# role → (username, password, display name, staff group)
DEMO_USERS = {
    "seller": ("seller", "seller-demo-pass", "Demo Seller", None),
    "buyer": ("buyer", "buyer-demo-pass", "Demo Buyer", None),
    "finance": ("finance", "finance-demo-pass", "Finance Desk", "Finance"),
    "risk": ("risk", "risk-demo-pass", "Risk Desk", "Risk"),
    "support": ("support", "support-demo-pass", "Support Desk", "Support"),
    "admin": ("admin", "admin-demo-pass", "Administrator", None),
}
EXTRA_USERS = [
    ("seller2", "seller2-demo-pass", "Second Seller"),
    ("buyer2", "buyer2-demo-pass", "Second Buyer"),
]

# slug, name (as shoppers in China say it), English name, category, code min, max, charset,
# checksum, pin required, pin min, pin max, commission, guarantee hours, high risk
DEMO_BRANDS = [
    (
        "test-card",
        "测试卡",
        "Test Card",
        Category.VOUCHER,
        10,
        32,
        "A-Za-z0-9",
        "",
        False,
        4,
        8,
        "5.00",
        72,
        False,
    ),
    (
        "jd-ecard",
        "京东E卡",
        "JD E-Card",
        Category.ECOMMERCE,
        16,
        16,
        "A-Z0-9",
        "",
        True,
        6,
        6,
        "4.00",
        72,
        False,
    ),
    (
        "carrefour",
        "家乐福购物卡",
        "Carrefour Shopping Card",
        Category.SHOPPING,
        16,
        16,
        "0-9",
        "luhn",
        True,
        6,
        6,
        "5.00",
        168,
        False,
    ),
    (
        "steam-wallet",
        "Steam 钱包",
        "Steam Wallet",
        Category.GAME,
        15,
        15,
        "A-Z0-9",
        "",
        False,
        4,
        8,
        "6.00",
        48,
        True,
    ),
    (
        "netease-points",
        "网易一卡通",
        "NetEase Points",
        Category.GAME,
        12,
        12,
        "0-9",
        "",
        True,
        8,
        8,
        "6.00",
        48,
        False,
    ),
    (
        "china-mobile",
        "中国移动充值卡",
        "China Mobile Top-up",
        Category.TELECOM,
        17,
        17,
        "0-9",
        "",
        True,
        18,
        18,
        "3.00",
        24,
        False,
    ),
    (
        "starbucks",
        "星巴克星礼卡",
        "Starbucks Star Card",
        Category.VOUCHER,
        16,
        16,
        "0-9",
        "luhn",
        True,
        8,
        8,
        "5.00",
        72,
        False,
    ),
]
# seller username → [(brand slug, face value, price)]
DEMO_LISTINGS = {
    "seller": [
        ("test-card", "100.00", "92.00"),
        ("test-card", "50.00", "47.50"),
        ("jd-ecard", "200.00", "186.00"),
        ("carrefour", "500.00", "455.00"),
        ("steam-wallet", "100.00", "88.00"),
        ("starbucks", "100.00", "90.00"),
    ],
    "seller2": [
        ("test-card", "100.00", "94.00"),
        ("jd-ecard", "100.00", "95.00"),
        ("netease-points", "50.00", "45.00"),
        ("china-mobile", "100.00", "97.00"),
        ("carrefour", "1000.00", "920.00"),
    ],
}
DEMO_STOCK = 20


def _random_code(brand: Brand) -> str:
    alphabet = {
        "A-Za-z0-9": string.ascii_uppercase + string.digits,
        "A-Z0-9": string.ascii_uppercase + string.digits,
        "0-9": string.digits,
    }[brand.code_charset]
    length = 16 if brand.code_min_length <= 16 <= brand.code_max_length else brand.code_min_length
    if brand.code_checksum == Brand.Checksum.LUHN:
        body = "".join(secrets.choice(string.digits) for _ in range(length - 1))
        return next(body + d for d in string.digits if luhn_valid(body + d))
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _random_pin(brand: Brand) -> str:
    if not brand.pin_required:
        return ""
    return "".join(secrets.choice(string.digits) for _ in range(brand.pin_max_length))


class Command(BaseCommand):
    help = (
        "Load idempotent demo data: brands, sellers with stocked listings, buyers, staff, "
        "sandbox channels."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--json", action="store_true", help="Print only the demo logins as JSON."
        )

    def handle(self, *args, **options):
        from accounts.roles import sync_staff_groups

        sync_staff_groups()
        with transaction.atomic():
            users = self._users()
            brands = self._brands()
            self._listings(users, brands)
            self._known_sellers(users)
            self._monitors()
        channels = self._channels()
        logins = {
            role: {"username": username, "password": password}
            for role, (username, password, *_rest) in DEMO_USERS.items()
        }
        if options["json"]:
            self.stdout.write(json.dumps({"users": logins}))
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data ready: {len(brands)} brands, {channels} channel accounts."
            )
        )
        self.stdout.write(f"Demo logins ({settings.SITE_URL}/accounts/login/):")
        for role, login in logins.items():
            self.stdout.write(f"  {role:<8} {login['username']:<10} / {login['password']}")

    def _users(self) -> dict:
        User = get_user_model()
        users = {}
        rows = [(u, p, n, g, role) for role, (u, p, n, g) in DEMO_USERS.items()]
        rows += [(u, p, n, None, u) for u, p, n in EXTRA_USERS]
        for username, password, name, group, role in rows:
            user, _created = User.objects.get_or_create(
                username=username, defaults={"email": f"{username}@cardex.local"}
            )
            user.display_name = user.display_name or name
            user.email = user.email or f"{username}@cardex.local"
            user.is_staff = bool(group) or role == "admin"
            user.is_superuser = role == "admin"
            user.set_password(password)
            user.save()
            if group:
                user.groups.add(Group.objects.get(name=group))
            users[username] = user
        return users

    def _known_sellers(self, users: dict) -> None:
        """The demo sellers stand for long-standing partners: on risk's allow list, so their
        bulk uploads (the demo's and yours) go on sale instead of waiting for an analyst."""
        from risk.models import ListEntry

        for username in DEMO_LISTINGS:
            ListEntry.objects.get_or_create(
                kind=ListEntry.Kind.ALLOW,
                field="user",
                value=str(users[username].pk),
                defaults={"note": "demo seller"},
            )

    def _monitors(self) -> None:
        """The starting monitors docs/risk.md suggests, so the risk desk has something to watch."""
        from risk.models import Monitor

        for name, metric, bounds, window, sample in (
            (
                "Channel success rate",
                "payments.success_rate",
                {"lower_bound": Decimal("85")},
                1,
                30,
            ),
            ("Dispute rate", "marketplace.dispute_rate", {"upper_bound": Decimal("3")}, 72, 50),
            ("Fraud rate", "marketplace.fraud_rate", {"upper_bound": Decimal("1")}, 168, 50),
        ):
            Monitor.objects.get_or_create(
                name=name,
                defaults={
                    "metric": metric,
                    "window_hours": window,
                    "min_sample": sample,
                    "per_dimension": True,
                    **bounds,
                },
            )

    def _brands(self) -> dict[str, Brand]:
        brands = {}
        for (
            slug,
            name,
            name_en,
            category,
            cmin,
            cmax,
            charset,
            checksum,
            pin_req,
            pmin,
            pmax,
            commission,
            hours,
            risky,
        ) in DEMO_BRANDS:
            brand, _created = Brand.objects.update_or_create(
                slug=slug,
                defaults={
                    "name": name,
                    "name_en": name_en,
                    "category": category,
                    "code_min_length": cmin,
                    "code_max_length": cmax,
                    "code_charset": charset,
                    "code_checksum": checksum,
                    "pin_required": pin_req,
                    "pin_min_length": pmin,
                    "pin_max_length": pmax,
                    "commission_percent": Decimal(commission),
                    "guarantee_hours": hours,
                    "high_risk": risky,
                    "active": True,
                },
            )
            brands[slug] = brand
        return brands

    def _listings(self, users: dict, brands: dict[str, Brand]) -> None:
        for username, rows in DEMO_LISTINGS.items():
            seller = users[username]
            for slug, face, price in rows:
                brand = brands[slug]
                listing = Listing.objects.filter(
                    seller=seller,
                    brand=brand,
                    face_value=Decimal(face),
                    status=Listing.Status.ACTIVE,
                ).first()
                if listing is None:
                    codes = [
                        CodeInput(code=_random_code(brand), pin=_random_pin(brand))
                        for _ in range(DEMO_STOCK)
                    ]
                    listing_create(
                        seller=seller,
                        brand=brand,
                        face_value=Decimal(face),
                        price=Decimal(price),
                        codes=codes,
                        screen=False,
                    )
                    continue
                missing = (
                    DEMO_STOCK - listing.codes.filter(status=CardCode.Status.AVAILABLE).count()
                )
                if missing > 0:
                    codes = [
                        CodeInput(code=_random_code(brand), pin=_random_pin(brand))
                        for _ in range(missing)
                    ]
                    listing_codes_add(listing=listing, seller=seller, codes=codes, screen=False)

    def _channels(self) -> int:
        """Sandbox channel accounts, provisioned by the simulators themselves, at the address
        they are served on; none when the sandbox is off (a real deployment)."""
        if not settings.PAYMENTS_SANDBOX:
            return 0
        from payments.sandbox.provisioning import demo_channels_ensure, demo_sandbox_url

        return len(demo_channels_ensure(sandbox_url=demo_sandbox_url()))
