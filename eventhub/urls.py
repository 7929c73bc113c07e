from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from eventhub import health, views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    # Before designer's: /api/v1/flows/{id}/checks is the event store's, under designer's /api/v1/flows/.
    path("", include("eventstore.urls")),
    path("", include("designer.urls")),
    path("", include("monitor.urls")),
    path("", include("deadletters.urls")),
]

# JSON for /api/ paths, Django's pages elsewhere (eventhub/api_errors.py).
handler400 = "eventhub.api_errors.bad_request"
handler404 = "eventhub.api_errors.page_not_found"
