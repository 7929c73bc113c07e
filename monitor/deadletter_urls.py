"""Routes of the dead-letter pages, included under /dead-letters/ by monitor/urls.py."""

from django.urls import path

from monitor import deadletter_views as views

urlpatterns = [
    path("", views.dead_letter_list, name="monitor-dead-letters"),
    path("rows", views.dead_letter_rows, name="monitor-dead-letter-rows"),
    path("<int:pk>/", views.dead_letter_detail, name="monitor-dead-letter-detail"),
    path("<int:pk>/state", views.dead_letter_state, name="monitor-dead-letter-state"),
    path("<int:pk>/receivers", views.dead_letter_receivers, name="monitor-dead-letter-receivers"),
    path("<int:pk>/retry", views.dead_letter_retry, name="monitor-dead-letter-retry"),
    path("<int:pk>/edit", views.dead_letter_edit, name="monitor-dead-letter-edit"),
    path("<int:pk>/discard", views.dead_letter_discard, name="monitor-dead-letter-discard"),
    path("jobs/", views.job_list, name="monitor-dead-letter-jobs"),
    path("jobs/new", views.job_new, name="monitor-dead-letter-job-new"),
    path("jobs/<int:pk>/", views.job_detail, name="monitor-dead-letter-job"),
    path("jobs/<int:pk>/state", views.job_state, name="monitor-dead-letter-job-state"),
    path("jobs/<int:pk>/cancel", views.job_cancel, name="monitor-dead-letter-job-cancel"),
    path("jobs/<int:pk>/resume", views.job_resume, name="monitor-dead-letter-job-resume"),
]
