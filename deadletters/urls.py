"""Routes of the dead-letter pages (/dead-letters/) and their REST API (/api/v1/)."""

from django.urls import path

from deadletters import api, views

urlpatterns = [
    # Pages.
    path("dead-letters/", views.dead_letter_list, name="dead-letters"),
    path("dead-letters/rows", views.dead_letter_rows, name="dead-letter-rows"),
    path("dead-letters/<int:pk>/", views.dead_letter_detail, name="dead-letter-detail"),
    path("dead-letters/<int:pk>/state", views.dead_letter_state, name="dead-letter-state"),
    path("dead-letters/<int:pk>/receivers", views.dead_letter_receivers, name="dead-letter-receivers"),
    path("dead-letters/<int:pk>/retry", views.dead_letter_retry, name="dead-letter-retry"),
    path("dead-letters/<int:pk>/edit", views.dead_letter_edit, name="dead-letter-edit"),
    path("dead-letters/<int:pk>/discard", views.dead_letter_discard, name="dead-letter-discard"),
    path("dead-letters/jobs/", views.job_list, name="dead-letter-jobs"),
    path("dead-letters/jobs/new", views.job_new, name="dead-letter-job-new"),
    path("dead-letters/jobs/<int:pk>/", views.job_detail, name="dead-letter-job"),
    path("dead-letters/jobs/<int:pk>/state", views.job_state, name="dead-letter-job-state"),
    path("dead-letters/jobs/<int:pk>/cancel", views.job_cancel, name="dead-letter-job-cancel"),
    path("dead-letters/jobs/<int:pk>/resume", views.job_resume, name="dead-letter-job-resume"),
    # REST.
    path("api/v1/dead-letters/", api.dead_letter_list, name="api-dead-letters"),
    path("api/v1/dead-letters/groups/", api.dead_letter_groups, name="api-dead-letter-groups"),
    path("api/v1/dead-letters/<int:pk>/", api.dead_letter_detail, name="api-dead-letter"),
    path("api/v1/dead-letters/<int:pk>/retry", api.dead_letter_retry, name="api-dead-letter-retry"),
    path("api/v1/dead-letters/<int:pk>/edit-and-retry", api.dead_letter_edit_and_retry, name="api-dead-letter-edit"),
    path("api/v1/dead-letters/<int:pk>/discard", api.dead_letter_discard, name="api-dead-letter-discard"),
    path("api/v1/redrive-jobs/", api.redrive_jobs, name="api-redrive-jobs"),
    path("api/v1/redrive-jobs/<int:pk>/", api.redrive_job_detail, name="api-redrive-job"),
    path("api/v1/redrive-jobs/<int:pk>/cancel", api.redrive_job_cancel, name="api-redrive-job-cancel"),
    path("api/v1/redrive-jobs/<int:pk>/resume", api.redrive_job_resume, name="api-redrive-job-resume"),
]
