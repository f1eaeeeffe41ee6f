"""Payment-platform API routes (the order pay call lives with orders in marketplace)."""

urlpatterns: list = []
