from django.apps import AppConfig


class EventHubConfig(AppConfig):
    name = "eventhub"
    verbose_name = "EventHub"

    def ready(self) -> None:
        # Load the Celery app so that @shared_task sends go to it; importing it
        # connects to nothing.
        from eventhub import celery  # noqa: F401
        from eventhub import checks  # noqa: F401
