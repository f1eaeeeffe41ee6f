"""The index risk's per-address velocity reads (payments from one address in the last hour).

payments_payment is the busiest table: on PostgreSQL the index is built CONCURRENTLY, so
checkouts keep writing payments while it builds (hence a non-atomic migration)."""

import django.db.models.fields.json
from django.conf import settings
from django.db import migrations, models


class AddIndexWithoutLockingWrites(migrations.AddIndex):
    """AddIndex, built concurrently on PostgreSQL (plainly elsewhere)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.add_index(model, self.index, concurrently=True)
        else:
            schema_editor.add_index(model, self.index)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("payments", "0014_provider_disputes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        AddIndexWithoutLockingWrites(
            model_name="payment",
            index=models.Index(
                django.db.models.fields.json.KeyTextTransform("ip", "client"),
                models.F("created_at"),
                name="payment_ip_recent",
            ),
        ),
    ]
