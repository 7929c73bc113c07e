from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


def _ensure_roles(using: str, **kwargs) -> None:
    """The role groups exist after every migrate and flush, as auth's permissions do.

    A group made here (a fresh database, or after a flush) gets the default grants of
    its role: Operator and Admin may see sensitive fields (eventhub/roles.py). A group
    that exists is left as the admin set it.
    """
    from django.contrib.auth.models import Group, Permission
    from django.contrib.contenttypes.models import ContentType

    from eventhub.roles import ROLES, SENSITIVE_BY_DEFAULT, VIEW_SENSITIVE

    for name in ROLES:
        group, created = Group.objects.using(using).get_or_create(name=name)
        if created and name in SENSITIVE_BY_DEFAULT:
            app_label, codename = VIEW_SENSITIVE.split(".")
            content_type, _ = ContentType.objects.db_manager(using).get_or_create(
                app_label=app_label, model="eventtype"
            )
            permission, _ = Permission.objects.using(using).get_or_create(
                content_type=content_type,
                codename=codename,
                defaults={"name": "Can see payload fields marked sensitive (x-eventhub-pii)"},
            )
            group.permissions.add(permission)


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
