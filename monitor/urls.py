from django.urls import path

from monitor import views

urlpatterns = [
    path("monitor/", views.dashboard, name="monitor-dashboard"),
    path("dead-letters/", views.dead_letters, name="monitor-dead-letters"),
]
