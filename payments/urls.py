from django.urls import path

from payments import views

app_name = "payments"

urlpatterns = [
    path("notify/<slug:account_code>/", views.notify, name="notify"),
]
