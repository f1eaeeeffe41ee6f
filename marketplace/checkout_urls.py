"""The buyer's order page: checkout, live status and delivered codes on one page."""

urlpatterns: list = []
