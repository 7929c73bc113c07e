"""AsyncAPI 3.0 pages: upload a document into the catalog, download ours."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_http_methods

from designer import asyncapi_db, asyncapi_export, asyncapi_import
from designer.models import Service
from eventhub.roles import DESIGNER, require_role

CONTENT_TYPES = {"yaml": "application/yaml; charset=utf-8", "json": "application/json; charset=utf-8"}


class ImportForm(forms.Form):
    """One AsyncAPI 3 document, uploaded or pasted; `clean()` reads and checks it."""

    file = forms.FileField(required=False, label="AsyncAPI file (.yaml, .yml or .json)")
    text = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 10}), label="…or paste it here")

    def clean(self):
        cleaned = super().clean()
        upload, text = cleaned.get("file"), cleaned.get("text") or ""
        if upload and text.strip():
            raise forms.ValidationError("Upload a file or paste a document, not both.")
        if not upload and not text.strip():
            raise forms.ValidationError("Choose a file or paste a document.")
        limit = settings.EVENTHUB_MAX_UPLOAD_BYTES
        size = upload.size if upload else len(text.encode())
        if size > limit:
            raise forms.ValidationError(
                f"The document is {size} bytes; the limit is {limit} bytes (EVENTHUB_MAX_UPLOAD_BYTES)."
            )
        data = upload.read() if upload else text
        try:
            cleaned["parsed"] = asyncapi_import.parse(asyncapi_import.load(data))
        except asyncapi_import.DocumentError as error:
            raise forms.ValidationError(f"This document cannot be imported: {error}") from None
        return cleaned


class ExportForm(forms.Form):
    service = forms.SlugField(required=False, max_length=100)
    format = forms.ChoiceField(required=False, choices=[("yaml", "YAML"), ("json", "JSON")])


@require_http_methods(["GET", "POST"])
def import_document(request: HttpRequest) -> HttpResponse:
    require_role(request.user, DESIGNER)
    form = ImportForm(request.POST, request.FILES) if request.method == "POST" else ImportForm()
    report = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            # Rendered straight away rather than redirected: the report is the
            # answer, and importing the same document again changes nothing.
            report = asyncapi_db.import_parsed(form.cleaned_data["parsed"], author=request.user)
            form = ImportForm()
        else:
            status = 400
    context = {
        "form": form,
        "report": report,
        "services": Service.objects.order_by("name"),
        "max_bytes": settings.EVENTHUB_MAX_UPLOAD_BYTES,
    }
    return render(request, "designer/asyncapi_import.html", context, status=status)


@require_GET
def export_document(request: HttpRequest) -> HttpResponse:
    form = ExportForm(request.GET)
    if not form.is_valid():
        return HttpResponse(_first_error(form), status=400, content_type="text/plain; charset=utf-8")
    slug = form.cleaned_data["service"]
    service = get_object_or_404(Service, slug=slug) if slug else None
    fmt = form.cleaned_data["format"] or "yaml"
    body = asyncapi_export.dump(asyncapi_db.export_document(service), fmt)
    response = HttpResponse(body, content_type=CONTENT_TYPES[fmt])
    name = service.slug if service else "eventhub"
    response["Content-Disposition"] = f'attachment; filename="{name}-asyncapi.{fmt}"'
    return response


def _first_error(form: forms.Form) -> str:
    for field, messages in form.errors.items():
        return f"{field}: {messages[0]}"
    return "Bad request."
