from django.urls import path

from risk import views

app_name = "risk"

urlpatterns = [
    path("monitoring/", views.monitoring, name="monitoring"),
    path("sessions/", views.sessions, name="sessions"),
]
