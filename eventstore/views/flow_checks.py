"""The flow-check page (/flows/<slug>/): steps and budgets, "Run check", live verdicts, history.

Everyone logged in reads it; the button is for Operators (it POSTs to the API, which
checks the role again). The page script polls GET /api/v1/flow-checks/{id} while a
check runs: a check lasts seconds to a minute, so a poll every second per open page
costs less than a websocket group per check.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from designer.models import Flow
from eventstore import flow_checks
from eventstore.api.flow_checks import checks_with_steps
from eventstore.serializers import FlowCheckSerializer

HISTORY = 50  # checks shown and plotted


@require_GET
def flow_checks_page(request: HttpRequest, slug: str) -> HttpResponse:
    flow = get_object_or_404(Flow, slug=slug)
    steps = flow_checks.ordered_steps(list(flow.steps.select_related("event_type", "producer", "consumer")))
    number = {step.pk: n for n, step in enumerate(steps, start=1)}
    for step in steps:
        step.number, step.after_number = number[step.pk], number.get(step.after_id)
    history = list(checks_with_steps().filter(flow=flow)[:HISTORY])
    context = {
        "flow": flow,
        "steps": steps,
        "history": FlowCheckSerializer(history, many=True).data,
        "every_s": settings.EVENTHUB_FLOW_CHECK_EVERY_S,
    }
    return render(request, "eventstore/flow_checks.html", context)
