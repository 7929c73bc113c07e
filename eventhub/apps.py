from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


def _ensure_roles(using: str, **kwargs) -> None:
    """The role groups exist after every migrate and flush, as auth's permissions do."""
    from django.contrib.auth.models import Group

    from eventhub.roles import ROLES

    for name in ROLES:
        Group.objects.using(using).get_or_create(name=name)


class EventHubConfig(AppConfig):
    name = "eventhub"
    verbose_name = "EventHub"

    def ready(self) -> None:
        # Load the Celery app so that @shared_task sends go to it; importing it
        # connects to nothing.
        from eventhub import (
            celery,  # noqa: F401
            checks,  # noqa: F401
        )

        # Sent once per app with models after migrate and after a flush; the roles live in auth.
        post_migrate.connect(_ensure_roles, sender=apps.get_app_config("auth"), dispatch_uid="eventhub-roles")
        # A user's websockets close when they log out or are deactivated (eventhub/sockets.py).
        from django.contrib.auth import get_user_model

        from eventhub import sockets

        sockets.connect_signals(get_user_model())
