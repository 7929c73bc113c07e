from django.conf import settings
from django.contrib.auth.middleware import LoginRequiredMiddleware as _LoginRequired
from django.http import HttpResponseBadRequest, JsonResponse


class LoginRequiredMiddleware(_LoginRequired):
    """Every page needs a login, except those marked @login_not_required.

    The REST API is left to DRF, which also accepts tokens and answers 401/403
    instead of redirecting a machine client to the login page.
    """

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path_info.startswith("/api/"):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


NUL_REFUSED = "NUL characters (\\u0000, %00) are not accepted: PostgreSQL text cannot hold them."
# Multipart too: its parts are JSON or form text here (an AsyncAPI upload is YAML or JSON).
_TEXT_BODIES = ("application/json", "application/x-www-form-urlencoded", "multipart/form-data")


class RefuseNulCharacters:
    """400 for a NUL character in the query string or a JSON or form body, before any view.

    PostgreSQL text and jsonb cannot store U+0000: a filter or field holding one would
    fail in the database as a 500 (schemathesis found it on PostgreSQL). Refusing it at
    the door says why, the same on SQLite and PostgreSQL, for every view at once.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if self._has_nul(request):
            if request.path_info.startswith("/api/"):
                return JsonResponse({"detail": NUL_REFUSED}, status=400)
            return HttpResponseBadRequest(NUL_REFUSED, content_type="text/plain; charset=utf-8")
        return self.get_response(request)

    @staticmethod
    def _has_nul(request) -> bool:
        query = request.META.get("QUERY_STRING", "")
        if "%00" in query or "\x00" in query:
            return True
        if request.content_type not in _TEXT_BODIES:
            return False
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return False
        if not 0 < length <= settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            return False  # Django refuses an oversized body itself, with its own answer
        body = request.body
        return b"\x00" in body or b"\\u0000" in body or b"%00" in body
