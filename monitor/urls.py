from django.urls import path

from monitor import api, metrics, views

urlpatterns = [
    path("monitor/", views.dashboard, name="monitor-dashboard"),
    # Live monitor back end (snapshot, history, Prometheus).
    path("api/v1/monitor/snapshot", api.snapshot, name="monitor-api-snapshot"),
    path("api/v1/monitor/history", api.history_series, name="monitor-api-history"),
    path("api/v1/monitor/history/busiest", api.busiest_series, name="monitor-api-history-busiest"),
    path("api/v1/monitor/observed/adopt", api.adopt_observed, name="monitor-api-adopt"),
    path("metrics", metrics.metrics_view, name="monitor-metrics"),
]
