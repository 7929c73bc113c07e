"""``manage.py asyncapi_import FILE...``: import AsyncAPI 3 documents into the catalog.

Every file is read and checked before anything is written, so one bad document
stops the run with a one-line error (exit 1) and imports nothing. Then each
document is imported in its own transaction and its report printed.
"""

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from designer import asyncapi_db, asyncapi_import


class Command(BaseCommand):
    help = "Import AsyncAPI 3 documents (YAML or JSON) into the catalog; '-' reads standard input."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", metavar="FILE")
        parser.add_argument("--dry-run", action="store_true", help="report what would change, then roll back")

    def handle(self, *args, files, dry_run, **options):
        parsed = []
        for name in files:
            try:
                data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
            except OSError as error:
                raise CommandError(f"{name}: {error.strerror}") from None
            try:
                parsed.append(asyncapi_import.parse(asyncapi_import.load(data)))
            except asyncapi_import.DocumentError as error:
                raise CommandError(f"{name}: {error}") from None
        for name, document in zip(files, parsed, strict=True):
            with transaction.atomic():
                report = asyncapi_db.import_parsed(document)
                if dry_run:
                    transaction.set_rollback(True)
            self.stdout.write(f"{name}{' (dry run, rolled back)' if dry_run else ''}")
            self.stdout.write("\n".join(report.lines()))
