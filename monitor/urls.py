from django.urls import include, path

from monitor import api, metrics, views
from monitor import dead_letter_api as dla

urlpatterns = [
    path("monitor/", views.dashboard, name="monitor-dashboard"),
    path("dead-letters/", include("monitor.deadletter_urls")),  # the dead-letter pages
    # Live monitor back end (snapshot, history, Prometheus).
    path("api/v1/monitor/snapshot", api.snapshot, name="monitor-api-snapshot"),
    path("api/v1/monitor/history", api.history_series, name="monitor-api-history"),
    path("metrics", metrics.metrics_view, name="monitor-metrics"),
    # Dead letters and redrive jobs (REST).
    path("api/v1/dead-letters/", dla.dead_letter_list, name="monitor-api-dead-letters"),
    path("api/v1/dead-letters/groups/", dla.dead_letter_groups, name="monitor-api-dead-letter-groups"),
    path("api/v1/dead-letters/<int:pk>/", dla.dead_letter_detail, name="monitor-api-dead-letter"),
    path("api/v1/dead-letters/<int:pk>/retry", dla.dead_letter_retry, name="monitor-api-dead-letter-retry"),
    path(
        "api/v1/dead-letters/<int:pk>/edit-and-retry",
        dla.dead_letter_edit_and_retry,
        name="monitor-api-dead-letter-edit",
    ),
    path("api/v1/dead-letters/<int:pk>/discard", dla.dead_letter_discard, name="monitor-api-dead-letter-discard"),
    path("api/v1/redrive-jobs/", dla.redrive_jobs, name="monitor-api-redrive-jobs"),
    path("api/v1/redrive-jobs/<int:pk>/", dla.redrive_job_detail, name="monitor-api-redrive-job"),
    path("api/v1/redrive-jobs/<int:pk>/cancel", dla.redrive_job_cancel, name="monitor-api-redrive-job-cancel"),
    path("api/v1/redrive-jobs/<int:pk>/resume", dla.redrive_job_resume, name="monitor-api-redrive-job-resume"),
]
