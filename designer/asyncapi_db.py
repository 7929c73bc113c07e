"""AsyncAPI documents in and out of the database: what the views and commands call.

Export: `export_document(service)` reads rows into a `Model` and has
`designer.asyncapi_export.build` write the document. Import: `import_text(text)`
(or `import_parsed` after `designer.asyncapi_import.parse`) writes a parsed
`Model` into rows. The mapping between a document and a `Model` is plain data
in those two modules; this one is the only part that touches the database.

Import rules that keep people's work:
  - identity: services by name (then slug), topics by (bus, address), event
    types by name, producers/consumers by (service, event type);
  - the document decides the structure it states (topic, partitions, groups,
    compatibility mode...); prose and canvas positions are only filled in where
    ours are empty, never overwritten;
  - schemas go through `designer.registry`, so the compatibility rules apply; a
    schema equal to any stored version is not registered again, and one the
    rules reject is kept as a draft with a warning.
Importing the same document twice therefore changes nothing.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils.text import slugify

from designer import asyncapi_export, asyncapi_import, privileged, registry
from designer.asyncapi_common import (
    DYNAMIC_NOTE,
    EventSpec,
    LinkSpec,
    Model,
    ServiceSpec,
    TopicSpec,
    compose_topic_description,
    split_topic_description,
)
from designer.asyncapi_import import ImportReport, Parsed
from designer.models import Consumer, Domain, EventType, Producer, SchemaVersion, Service, Topic

SYSTEM_TITLE = "EventHub catalog"
_HTTP_URL = URLValidator(schemes=["http", "https"])


# --------------------------------------------------------------------------- export
def export_document(service: Service | None = None) -> dict:
    """The AsyncAPI document of one service, or of the whole system when `service` is None."""
    model = service_model(service) if service is not None else system_model()
    return asyncapi_export.build(model, servers=bus_servers())


def bus_servers() -> dict[str, dict]:
    """Server Objects for our two buses, from settings (never with credentials)."""
    bootstrap = [h.strip() for h in settings.KAFKA_BOOTSTRAP_SERVERS.split(",") if h.strip()]
    kafka = {
        "host": bootstrap[0],
        "protocol": "kafka",
        "description": "Kafka (bootstrap servers: " + ", ".join(bootstrap) + ").",
    }
    url = urlsplit(settings.REDIS_URL)
    # hostname/port drop any user:password@ in the URL.
    host = f"{url.hostname}:{url.port or 6379}" if url.hostname else "localhost"
    redis = {"host": host, "protocol": "redis", "description": "Redis Streams."}
    return {"kafka": kafka, "redis": redis}


def system_model() -> Model:
    services = list(Service.objects.select_related("domain"))
    events = list(EventType.objects.select_related("topic", "owner", "domain"))
    topics = list(Topic.objects.select_related("domain"))
    links = _links(Producer.objects.all(), Consumer.objects.all())
    return Model(
        title=SYSTEM_TITLE,
        description="Every service, topic and event designed in EventHub.",
        system=True,
        services=[_service_spec(s) for s in services],
        topics=[_topic_spec(t) for t in topics],
        events=_event_specs(events),
        links=links,
    )


def service_model(service: Service) -> Model:
    """What one service sends and receives, on which topics."""
    links = _links(Producer.objects.filter(service=service), Consumer.objects.filter(service=service))
    names = {link.event for link in links}
    events = list(EventType.objects.filter(name__in=names).select_related("topic", "owner", "domain"))
    topics = {e.topic for e in events if e.topic is not None}
    return Model(
        title=service.name,
        description=service.description,
        services=[_service_spec(service)],
        topics=[_topic_spec(t) for t in sorted(topics, key=lambda t: t.name)],
        events=_event_specs(events),
        links=links,
    )


def _service_spec(service: Service) -> ServiceSpec:
    return ServiceSpec(
        name=service.name,
        slug=service.slug,
        description=service.description,
        owner_team=service.owner_team,
        repository_url=service.repository_url,
        tags=[t for t in service.tags or [] if isinstance(t, str)],
        domain=service.domain.name if service.domain else "",
        x=service.x,
        y=service.y,
    )


def _topic_spec(topic: Topic) -> TopicSpec:
    prose, dynamic = split_topic_description(topic.description)
    default_dlq = topic.dead_letter_topic == topic.default_dead_letter_topic()
    return TopicSpec(
        key=topic.name,
        name=topic.name,
        address=topic.address,
        bus=topic.bus,
        dynamic=dynamic,
        partitions=topic.partitions,
        retention_ms=topic.retention_ms,
        dead_letter_topic="" if default_dlq else topic.dead_letter_topic,
        description=prose,
        domain=topic.domain.name if topic.domain else "",
        x=topic.x,
        y=topic.y,
    )


def _event_specs(events: list[EventType]) -> list[EventSpec]:
    latest: dict[int, SchemaVersion] = {}
    for version in SchemaVersion.objects.registered().filter(event_type__in=events).order_by("version"):
        latest[version.event_type_id] = version  # ascending: the last one wins
    specs = []
    for event in events:
        version = latest.get(event.pk)
        specs.append(
            EventSpec(
                name=event.name,
                topic=event.topic.name if event.topic else None,
                kind=event.kind,
                owner=event.owner.name if event.owner else None,
                key_field=event.key_field or None,
                compatibility_mode=event.compatibility_mode,
                compatibility_policy=event.compatibility_policy,
                description=event.description,
                domain=event.domain.name if event.domain else "",
                schema=version.schema if version else None,
                examples=list(version.examples or []) if version else [],
                x=event.x,
                y=event.y,
            )
        )
    return specs


def _links(producers, consumers) -> list[LinkSpec]:
    links = [
        LinkSpec(service=p.service.name, event=p.event_type.name, action="send", notes=p.notes)
        for p in producers.select_related("service", "event_type")
    ]
    links += [
        LinkSpec(
            service=c.service.name,
            event=c.event_type.name,
            action="receive",
            group=c.group,
            fields_used=list(c.fields_used or []),
            max_attempts=c.max_attempts,
            backoff_ms=c.backoff_ms,
            dead_letter=c.dead_letter,
            notes=c.notes,
        )
        for c in consumers.select_related("service", "event_type")
    ]
    return links


# --------------------------------------------------------------------------- import
def import_text(text: str | bytes, *, author=None) -> ImportReport:
    """Read, check and import one YAML/JSON document. Raises asyncapi_import.DocumentError."""
    return import_parsed(asyncapi_import.parse(asyncapi_import.load(text)), author=author)


def import_parsed(parsed: Parsed, *, author=None) -> ImportReport:
    """Write a parsed document into the catalog, in one transaction."""
    with transaction.atomic():
        return _Importer(parsed, author).run()


_EMPTY = ("", None, [])


class _Importer:
    def __init__(self, parsed: Parsed, author) -> None:
        self.model = parsed.model
        self.author = author
        self.report = ImportReport(title=self.model.title, warnings=list(parsed.warnings))
        self.domains: dict[str, Domain] = {}

    def run(self) -> ImportReport:
        services = {spec.name: self._service(spec) for spec in self.model.services}
        for name in {e.owner for e in self.model.events if e.owner} | {k.service for k in self.model.links}:
            if name not in services:
                services[name] = self._service(ServiceSpec(name=name))
        topics = {spec.key: self._topic(spec) for spec in self.model.topics}
        first_producer = {}
        for link in self.model.links:
            if link.action == "send":
                first_producer.setdefault(link.event, services[link.service])
        events = {
            spec.name: self._event(spec, topics, services, first_producer.get(spec.name)) for spec in self.model.events
        }
        for link in self.model.links:
            if link.event in events:
                self._link(link, services[link.service], events[link.event])
        for spec in self.model.events:
            self._schema(spec, events[spec.name])
        return self.report

    # ----------------------------------------------------------------- helpers
    def _save(self, kind: str, obj, created: bool, changed: list[str]) -> None:
        if created:
            obj.save()
            self.report.add(kind, "created")
        elif changed:
            if any(f.name == "updated_at" for f in obj._meta.fields):
                changed.append("updated_at")
            obj.save(update_fields=changed)
            self.report.add(kind, "updated")
        else:
            self.report.add(kind, "unchanged")

    @staticmethod
    def _set(obj, changed: list[str], **values: Any) -> None:
        """The document's word for structure it states."""
        for name, value in values.items():
            if getattr(obj, name) != value:
                setattr(obj, name, value)
                changed.append(name)

    @staticmethod
    def _fill(obj, changed: list[str], **values: Any) -> None:
        """Prose: written only where ours is empty and the document has something."""
        for name, value in values.items():
            if value not in _EMPTY and getattr(obj, name) in _EMPTY:
                setattr(obj, name, value)
                changed.append(name)

    @staticmethod
    def _place(obj, changed: list[str], x: float | None, y: float | None) -> None:
        """A canvas position only for a node that has none yet."""
        if obj.x is None and obj.y is None and (x is not None or y is not None):
            obj.x, obj.y = x, y
            changed += ["x", "y"]

    def _web_url(self, url: str, service: str) -> str:
        """Only http(s) links: the catalog renders this as a link, so no javascript: URLs."""
        if not url:
            return ""
        try:
            _HTTP_URL(url)
        except ValidationError:
            self.report.warn("#/info/x-eventhub-services", f"{service}: repository URL {url[:100]!r} ignored.")
            return ""
        return url[:200]

    def _fill_domain(self, obj, changed: list[str], name: str) -> None:
        if obj.domain_id is None and name.strip():
            obj.domain = self._domain(name)
            changed.append("domain")

    def _domain(self, name: str) -> Domain:
        name = name.strip()[:100]
        if name not in self.domains:
            domain = Domain.objects.filter(name=name).first() or Domain.objects.filter(slug=slugify(name)).first()
            if domain is None:
                domain = Domain.objects.create(name=name, slug=_unique_slug(Domain, slugify(name) or "domain", 100))
                self.report.add("domains", "created")
            else:
                self.report.add("domains", "unchanged")
            self.domains[name] = domain
        return self.domains[name]

    # ----------------------------------------------------------------- rows
    def _service(self, spec: ServiceSpec) -> Service:
        wanted_slug = slugify(spec.slug or spec.name)[:100] or "service"
        service = Service.objects.filter(name=spec.name).first() or Service.objects.filter(slug=wanted_slug).first()
        created = service is None
        if created:
            service = Service(name=spec.name, slug=_unique_slug(Service, wanted_slug, 100))
        changed: list[str] = []
        self._fill(
            service,
            changed,
            description=spec.description,
            owner_team=spec.owner_team[:100],
            repository_url=self._web_url(spec.repository_url, spec.name),
            tags=list(spec.tags),
        )
        self._fill_domain(service, changed, spec.domain)
        self._place(service, changed, spec.x, spec.y)
        self._save("services", service, created, changed)
        return service

    def _topic(self, spec: TopicSpec) -> Topic:
        topic = Topic.objects.filter(bus=spec.bus, address=spec.address).first()
        created = topic is None
        if created:
            name = spec.name
            if Topic.objects.filter(name=name).exists():
                name = _unique_name(Topic, f"{spec.name} ({spec.address})"[:200])
                self.report.warn(
                    spec.pointer,
                    f"A topic named {spec.name!r} already exists at another address; this one is {name!r}.",
                )
            topic = Topic(name=name, bus=spec.bus, address=spec.address)
        changed: list[str] = []
        if spec.partitions is not None:
            self._set(topic, changed, partitions=spec.partitions)
        if spec.retention_ms is not None:
            self._set(topic, changed, retention_ms=spec.retention_ms)
        if spec.dead_letter_topic:
            refused = privileged.dead_letter_topic_errors(
                self.author,
                bus=spec.bus,
                address=spec.address,
                wanted=spec.dead_letter_topic,
                current=None if created else topic.dead_letter_topic,
            )
            if refused:
                self.report.warn(spec.pointer, f"{topic.name}: dead-letter topic not changed. {' '.join(refused)}")
            else:
                self._set(topic, changed, dead_letter_topic=spec.dead_letter_topic)
        if created or not topic.description:
            self._fill(topic, changed, description=compose_topic_description(spec))
        else:
            # A dynamic address is structure, though its mark lives in the prose.
            prose, dynamic = split_topic_description(topic.description)
            if dynamic != spec.dynamic:
                text = f"{prose}\n\n{DYNAMIC_NOTE}" if spec.dynamic else prose
                self._set(topic, changed, description=text.strip())
        self._fill_domain(topic, changed, spec.domain)
        self._place(topic, changed, spec.x, spec.y)
        self._save("topics", topic, created, changed)
        return topic

    def _event(
        self, spec: EventSpec, topics: dict[str, Topic], services: dict[str, Service], producer: Service | None
    ) -> EventType:
        event = EventType.objects.filter(name=spec.name).first()
        created = event is None
        if created:
            event = EventType(name=spec.name)
        changed: list[str] = []
        if spec.topic is not None:
            self._set(event, changed, topic=topics[spec.topic])
        if spec.kind is not None:
            self._set(event, changed, kind=spec.kind)
        if spec.owner is not None:
            self._set(event, changed, owner=services[spec.owner])
        elif event.owner_id is None and producer is not None:
            # The document does not say; the service that sends it is the natural owner.
            self._set(event, changed, owner=producer)
        if spec.key_field is not None:
            self._set(event, changed, key_field=spec.key_field[:200])
        modes = {m for m, _ in EventType.MODES}
        if spec.compatibility_mode in modes:
            self._set(event, changed, compatibility_mode=spec.compatibility_mode)
        elif spec.compatibility_mode:
            self.report.warn(spec.pointer, f"Unknown compatibility mode {spec.compatibility_mode!r}; ignored.")
        if spec.compatibility_policy in {p for p, _ in EventType.POLICIES}:
            self._set(event, changed, compatibility_policy=spec.compatibility_policy)
        self._fill(event, changed, description=spec.description)
        self._fill_domain(event, changed, spec.domain)
        self._place(event, changed, spec.x, spec.y)
        self._save("events", event, created, changed)
        return event

    def _link(self, spec: LinkSpec, service: Service, event: EventType) -> None:
        model, kind = (Producer, "producers") if spec.action == "send" else (Consumer, "consumers")
        link = model.objects.filter(service=service, event_type=event).first()
        created = link is None
        if created:
            link = model(service=service, event_type=event)
        changed: list[str] = []
        if spec.action == "receive":
            if spec.group:
                self._set(link, changed, group=spec.group)
            if spec.fields_used is not None:
                self._set(link, changed, fields_used=spec.fields_used)
            stored = (link.event_type_id, link.group, link.max_attempts, link.dead_letter)
            for name in ("max_attempts", "backoff_ms", "dead_letter"):
                if getattr(spec, name) is not None:
                    self._set(link, changed, **{name: getattr(spec, name)})
            self._keep_poison_rules(link, created, stored, changed, spec)
        self._fill(link, changed, notes=spec.notes)
        self._save(kind, link, created, changed)

    def _keep_poison_rules(self, link: Consumer, created: bool, stored: tuple, changed: list[str], spec) -> None:
        """A dead-lettering Redis consumer is a poison rule: only an Operator's import makes or changes one."""
        topic = link.event_type.topic
        if topic is None or topic.bus != Topic.REDIS:
            return
        if created and spec.dead_letter is None:
            link.dead_letter = False  # the model's default would make a rule nobody asked for
        current = None if created or not stored[3] else stored[:3]
        refused = privileged.poison_rule_errors(
            self.author,
            bus=topic.bus,
            dead_letter=link.dead_letter,
            rule=(link.event_type_id, link.group or link.service.slug, link.max_attempts),
            current_rule=current,
        )
        if not refused:
            return
        if created:
            link.dead_letter = False
        else:
            link.max_attempts, link.dead_letter = stored[2], stored[3]
            changed[:] = [name for name in changed if name not in ("max_attempts", "dead_letter")]
        self.report.warn(spec.pointer, f"{link}: not dead-lettering as the document asks. {' '.join(refused)}")

    def _schema(self, spec: EventSpec, event: EventType) -> None:
        if spec.schema is None:
            return
        where = spec.pointer + "/payload"
        wanted = registry.canonical_json(spec.schema)
        versions = list(event.versions.order_by("version"))
        registered = [v for v in versions if v.state == SchemaVersion.REGISTERED]
        for version in versions:
            if registry.canonical_json(version.schema) == wanted:
                self.report.add("schemas", "unchanged")
                if version.state == SchemaVersion.DRAFT:
                    self.report.warn(
                        where, f"{event.name}: the schema is draft version {version.version}, not registered."
                    )
                elif registered and version != registered[-1]:
                    self.report.warn(
                        where,
                        f"{event.name}: the schema is version {version.version}; the latest is "
                        f"{registered[-1].version}, so it was not registered again.",
                    )
                return
        try:
            registry.validate_document(spec.schema)
        except registry.InvalidSchema as error:
            self.report.warn(where, f"{event.name}: schema not registered: {error.message} (schema path {error.path})")
            return
        examples = list(spec.examples)
        try:
            registry.validate_examples(spec.schema, examples)
        except registry.InvalidSchema as error:
            self.report.warn(where, f"{event.name}: examples left out: {error.message}")
            examples = []
        options = {
            "author": self.author,
            "changelog": f"Imported from the AsyncAPI document “{self.model.title}”.",
            "examples": examples,
        }
        try:
            registry.register_version(event, spec.schema, **options)
        except registry.IncompatibleSchema as error:
            # Nothing is lost: the rejected schema waits as a draft for someone to decide.
            draft = registry.register_version(event, spec.schema, as_draft=True, **options)
            self.report.warn(
                where, f"{event.name}: schema not registered: {error.reason} Kept as draft version {draft.version}."
            )
        self.report.add("schemas", "created")


def _unique_slug(model, base: str, limit: int) -> str:
    candidate, n = base[:limit], 2
    while model.objects.filter(slug=candidate).exists():
        suffix = f"-{n}"
        candidate, n = base[: limit - len(suffix)] + suffix, n + 1
    return candidate


def _unique_name(model, base: str) -> str:
    candidate, n = base, 2
    while model.objects.filter(name=candidate).exists():
        candidate, n = f"{base} {n}", n + 1
    return candidate
