from django.urls import include, path

from marketplace import views

app_name = "marketplace"

urlpatterns = [
    path("", views.catalogue, name="catalogue"),
    path("", include("marketplace.checkout_urls")),
]
