"""Django's own 400 and 404 answers in the API's shape under /api/: JSON `{detail}`, not HTML pages.

DRF answers the errors raised in its views. Two kinds never reach it: a path under
/api/ that matches no route (a letter in a numeric id), and a body Django refuses
while DRF parses it (over DATA_UPLOAD_MAX_NUMBER_FIELDS form fields, over
DATA_UPLOAD_MAX_MEMORY_SIZE bytes). Django answers those through handler404 and
handler400 (eventhub/urls.py): these, which leave every page its HTML.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def _refused_body(exception: Exception | None) -> str:
    # Only Django's own limits are named: other SuspiciousOperations (a bad Host...) say nothing.
    if isinstance(exception, RequestDataTooBig):
        return f"The request body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes (EVENTHUB_MAX_UPLOAD_BYTES)."
    if isinstance(exception, TooManyFieldsSent):
        return f"The request has over {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} form fields; send JSON."
    if isinstance(exception, TooManyFilesSent):
        return f"The request has over {settings.DATA_UPLOAD_MAX_NUMBER_FILES} files."
    return "Bad request."


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not _is_api(request):
        return defaults.bad_request(request, exception)
    return JsonResponse({"detail": _refused_body(exception)}, status=400)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not _is_api(request):
        return defaults.page_not_found(request, exception)
    return JsonResponse({"detail": "Not found."}, status=404)
