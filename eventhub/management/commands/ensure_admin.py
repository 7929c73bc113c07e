import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the demo admin when no superuser exists, and print its login once."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username, **options):
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write(
                "eventhub: admin user exists (its password was printed when it was created; "
                f"reset it with `python manage.py changepassword {username}`)."
            )
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username, f"{username}@localhost", password)
        # Printed to the terminal of the person who ran `make run`, once; never logged.
        self.stdout.write(self.style.SUCCESS(f"eventhub: created admin user  login: {username}  password: {password}"))
