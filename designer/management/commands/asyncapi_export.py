"""``manage.py asyncapi_export [--service SLUG] [--output FILE] [--format yaml|json]``.

Writes the AsyncAPI 3.0.0 document of one service, or of the whole system, to
standard output or a file. The format defaults to YAML, or to the output
file's extension.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from designer import asyncapi_db, asyncapi_export
from designer.models import Service


class Command(BaseCommand):
    help = "Export the catalog (or one service) as an AsyncAPI 3.0.0 document."

    def add_arguments(self, parser):
        parser.add_argument("--service", metavar="SLUG", help="only this service (default: the whole system)")
        parser.add_argument("--output", "-o", metavar="FILE", help="write here instead of standard output")
        parser.add_argument("--format", choices=["yaml", "json"], help="yaml (default) or json")

    def handle(self, *args, service, output, format, **options):
        selected = None
        if service:
            selected = Service.objects.filter(slug=service).first()
            if selected is None:
                raise CommandError(f"No service with slug {service!r}.")
        fmt = format or ("json" if output and output.lower().endswith(".json") else "yaml")
        text = asyncapi_export.dump(asyncapi_db.export_document(selected), fmt)
        if output:
            try:
                Path(output).write_text(text, encoding="utf-8")
            except OSError as error:
                raise CommandError(f"{output}: {error.strerror}") from None
        else:
            self.stdout.write(text, ending="")
