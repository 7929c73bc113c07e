"""REST API routes of the designer and the schema registry (under /api/v1/)."""

urlpatterns = []
