"""The topic browser's pages: /browse/ (pick a bus and a topic) and /browse/<bus>/<topic>/.

The second page is a shell: static/eventstore/browse.js fills it from the API
(/api/v1/bus/.../messages, in steps with its cursor) and from the live tail's socket
(eventstore/consumers.py). Every logged-in user reads both.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from eventhub.bus import BusError, UnknownTopic
from eventstore import browse


@require_GET
def topic_browser(request: HttpRequest) -> HttpResponse:
    """Every topic of both buses, designed or not, with partitions and end offsets."""
    buses = []
    for kind in browse.BUSES:
        try:
            buses.append({"kind": kind, "topics": browse.topics(kind), "error": ""})
        except BusError as error:
            buses.append({"kind": kind, "topics": [], "error": f"{type(error).__name__}: {error}"[:300]})
    return render(request, "eventstore/browse.html", {"buses": buses})


@require_GET
def topic_browser_topic(request: HttpRequest, bus: str, topic: str) -> HttpResponse:
    """One topic: the filter form, the results, the live tail."""
    if bus not in browse.BUSES:
        raise Http404("The bus is kafka or redis.")
    try:
        info = browse.topic_info(bus, topic)
        problem = ""
    except UnknownTopic:
        raise Http404(f"The {bus} bus has no topic {topic[:300]!r}.") from None
    except BusError as error:
        info, problem = {"name": topic, "partitions": 0, "end_offsets": {}}, f"{type(error).__name__}: {error}"[:300]
    context = {
        "bus": bus,
        "topic": info,
        "problem": problem,
        "api_url": reverse("api-bus-messages", args=[bus, topic]),
        "tail_path": "/ws/browse/",
        "max_budget": browse.MAX_BUDGET,
        "max_limit": browse.MAX_LIMIT,
    }
    return render(request, "eventstore/browse_topic.html", context)
