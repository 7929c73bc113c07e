"""What Django's debug pages and error e-mails may show.

Django masks settings whose names look secret (API, TOKEN, KEY, SECRET, PASS...), but
not a password inside a URL: REDIS_URL, DATABASE_URL, CELERY_BROKER_URL and the
CHANNEL_LAYERS hosts hold `scheme://user:password@host`. The filter
(DEFAULT_EXCEPTION_REPORTER_FILTER) masks those in settings, nested or not, and in request
headers; the reporter (DEFAULT_EXCEPTION_REPORTER) in the exception's text and the
frames' local variables.
"""

from __future__ import annotations

import re
from typing import Any

from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

SUBSTITUTE = SafeExceptionReporterFilter.cleansed_substitute
# scheme://user:password@ or scheme://token@ (no colon: the whole user part may be a token).
_USERINFO = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.\-]*://)(?P<user>[^:@/\s]*)(?P<password>:[^@\s]*)?@", re.I)


def mask_credentials(text: str) -> str:
    """`redis://app:s3cret@redis:6379/0` -> `redis://app:********@redis:6379/0`, wherever it is in text."""

    def masked(match: re.Match) -> str:
        if match["password"] is None:
            return f"{match['scheme']}{SUBSTITUTE}@"
        return f"{match['scheme']}{match['user']}:{SUBSTITUTE}@"

    return _USERINFO.sub(masked, text)


class CredentialsFilter(SafeExceptionReporterFilter):
    """Django's filter, plus credentials inside URL-valued strings. Django's `cleanse_setting`
    recurses through dicts, lists and tuples by calling this method, so nested values are masked."""

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        if isinstance(value, str):  # lazy strings too: they pass for str and are read as such
            try:
                text = str(value)
            except Exception:  # noqa: BLE001 - a lazy value that fails must not take the page down
                text = ""
            masked = mask_credentials(text)
            if masked != text:
                value = masked
        return super().cleanse_setting(key, value)


class CredentialsReporter(ExceptionReporter):
    """Django's reporter, with credentials in URLs masked in the exception text and in the
    frames' variables (after they are printed, so a URL deep in a dict is caught as well)."""

    def get_traceback_data(self) -> dict[str, Any]:
        data = super().get_traceback_data()
        for frame in data["frames"]:
            if "vars" in frame:
                frame["vars"] = [(name, mask_credentials(value)) for name, value in frame["vars"]]
            if frame.get("exc_cause") is not None:
                frame["exc_cause"] = mask_credentials(str(frame["exc_cause"]))
        for key in ("exception_value", "exception_notes"):
            if key in data:
                data[key] = mask_credentials(data[key])
        return data
