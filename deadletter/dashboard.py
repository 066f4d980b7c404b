"""The dashboard's Failures and Audit pages (the rest of it: ``queues.http.dashboard``).

Failures: dead letters of one status (default open) grouped by queue and error
fingerprint (``deadletter.fingerprint``) in one GROUP BY, last failed first, at most
``MAX_GROUPS``; each with its job types, first and last failure, an example row and its
failures per hour over 24 h (one TruncHour query for all shown groups, drawn as inline
SVG). "Requeue all" and "Archive all" POST to ``deadletter.services.act_on_group``.

Audit: the trail newest first, ``PAGE_SIZE`` a page, filtered by actor, action, target
type, queue, job id prefix and dates. Keyset paging on (created_at, id): the "older"
link carries the last row's position (``before=<µs since the epoch>.<id>``), so no
page counts or skips rows.

Permissions: ``queues.view_dashboard``, and ``deadletter.requeue_deadletter`` /
``deadletter.archive_deadletter`` for the group actions. A filter the page cannot read
is a 400 with a sentence (plain text).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, cast

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Max, Min, Q, QuerySet
from django.db.models.functions import TruncHour
from django.http import HttpRequest, HttpResponse, QueryDict
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.utils.translation import ngettext
from django_celery_beat.models import PeriodicTask

from deadletter import services
from deadletter.fingerprint import KEY_LENGTH
from deadletter.models import AuditEvent, DeadLetter
from queues import registry
from queues.http.dashboard import VIEW, acted, acts, refused, render, requires

MAX_GROUPS = 200
MAX_JOB_TYPES = 5
SPARK_HOURS = 24
PAGE_SIZE = 50
MAX_JOB_IDS_SHOWN = 20
DETAILS_LENGTH = 300
MAX_ERRORS_SHOWN = 10  # of a group action's refused rows, in its message
GROUP_ACTIONS = {"requeue": ("deadletter.requeue_deadletter", "requeued"),  # permission,
                 "archive": ("deadletter.archive_deadletter", "archived")}  # past tense
_FINGERPRINT = re.compile(rf"[0-9a-f]{{{KEY_LENGTH}}}")
_CURSOR = re.compile(r"(\d{1,16})\.(\d{1,18})")  # 16 digits of µs: up to the year 2286
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def refused_filter(form: forms.Form) -> HttpResponse:
    """A 400 naming each filter the form refused, as text (the values are the user's)."""
    problems = "; ".join(f"{'filters' if name == '__all__' else name}: {' '.join(map(str, errors))}"
                         for name, errors in form.errors.items())
    return refused(f"The filter was refused ({problems}).")


class FailuresFilter(forms.Form):
    status = forms.ChoiceField(choices=DeadLetter.Status.choices, required=False)
    queue = forms.ChoiceField(required=False)

    def __init__(self, data: QueryDict, *, queues: list[str]) -> None:
        super().__init__(data)
        cast(forms.ChoiceField, self.fields["queue"]).choices = [
            ("", "all queues"), *((q, q) for q in queues)]

    def clean_status(self) -> str:
        return str(self.cleaned_data["status"] or DeadLetter.Status.OPEN)


@dataclass(frozen=True)
class Bar:
    """One hour of a sparkline: its rectangle in the SVG, and its count."""

    x: int
    y: int
    height: int
    count: int
    hour: datetime


SPARK_HEIGHT = 24
SPARK_BAR = 4  # px per hour: a 3 px bar and a 1 px gap


@dataclass(frozen=True)
class Sparkline:
    """An inline SVG of hourly counts: its bars, its size, and its numbers as text."""

    bars: list[Bar]
    label: str
    width: int
    height: int = SPARK_HEIGHT
    bar_width: int = SPARK_BAR - 1


def sparkline(counts: list[int], start: datetime) -> Sparkline:
    """Bars for hourly ``counts`` (oldest first, from ``start``) and a label giving them."""
    peak = max(counts, default=0)
    bars = []
    for n, count in enumerate(counts):
        height = max(2, round(count / peak * (SPARK_HEIGHT - 2))) if count else 1
        bars.append(Bar(x=n * SPARK_BAR, y=SPARK_HEIGHT - height, height=height, count=count,
                        hour=start + timedelta(hours=n)))
    label = (f"Failures per hour over the last {len(counts)} hours, oldest first: "
             f"{', '.join(map(str, counts))} (total {sum(counts)}, peak {peak})")
    return Sparkline(bars=bars, label=label, width=len(counts) * SPARK_BAR)


@dataclass(frozen=True)
class FailureGroup:
    """Dead letters of one queue with one error fingerprint."""

    queue: str
    fingerprint: str
    text: str
    count: int
    first_seen: datetime
    last_seen: datetime
    example_id: int
    job_types: list[str]
    more_job_types: int
    spark: Sparkline


def queue_names() -> list[str]:
    """Registered queue types and the queues dead letters name (a queue type may be gone)."""
    stored = DeadLetter.objects.order_by("queue").values_list("queue", flat=True).distinct()
    return sorted(set(registry.all_specs()) | set(stored))


def failure_groups(status: str, queue: str) -> tuple[list[FailureGroup], bool]:
    """The groups of ``status`` dead letters (of ``queue``, or all), last failed first;
    and whether there were more than ``MAX_GROUPS``."""
    rows = DeadLetter.objects.filter(status=status)
    if queue:
        rows = rows.in_queue(queue)
    found = list(rows.values("queue", "fingerprint").annotate(
        count=Count("pk"), first_seen=Min("failed_at"), last_seen=Max("failed_at"),
        text=Max("fingerprint_text"), example=Max("pk"),
    ).order_by("-last_seen", "queue", "fingerprint")[:MAX_GROUPS + 1])
    shown = found[:MAX_GROUPS]
    # Both follow-up queries read only the shown groups' rows (the index's prefix).
    theirs = rows.filter(queue__in={g["queue"] for g in shown},
                         fingerprint__in={g["fingerprint"] for g in shown})
    job_types = _job_types(theirs)
    start = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(
        hours=SPARK_HOURS - 1)
    hourly = _hourly(theirs, start)
    return [_group(g, job_types.get((g["queue"], g["fingerprint"]), []),
                   hourly.get((g["queue"], g["fingerprint"]), [0] * SPARK_HOURS), start)
            for g in shown], len(found) > MAX_GROUPS


def _group(g: Mapping[str, Any], job_types: list[str], hourly: list[int],
           start: datetime) -> FailureGroup:
    return FailureGroup(
        queue=g["queue"], fingerprint=g["fingerprint"], text=g["text"], count=g["count"],
        first_seen=g["first_seen"], last_seen=g["last_seen"], example_id=g["example"],
        job_types=job_types[:MAX_JOB_TYPES],
        more_job_types=max(0, len(job_types) - MAX_JOB_TYPES), spark=sparkline(hourly, start))


def _job_types(rows: QuerySet[DeadLetter]) -> dict[tuple[str, str], list[str]]:
    """The distinct job names of each (queue, fingerprint) among ``rows``."""
    names: dict[tuple[str, str], list[str]] = {}
    for queue, fp, name in rows.values_list("queue", "fingerprint", "job_name").distinct(
            ).order_by("job_name"):
        names.setdefault((queue, fp), []).append(name)
    return names


def _hourly(rows: QuerySet[DeadLetter], start: datetime) -> dict[tuple[str, str], list[int]]:
    """Failures per hour since ``start`` of each (queue, fingerprint), in one grouped query."""
    series: dict[tuple[str, str], list[int]] = {}
    per_hour = rows.filter(failed_at__gte=start).annotate(hour=TruncHour("failed_at")).values(
        "queue", "fingerprint", "hour").annotate(n=Count("pk")).order_by()
    for bucket in per_hour:
        index = int((bucket["hour"] - start) / timedelta(hours=1))
        if 0 <= index < SPARK_HOURS:  # a failed_at ahead of this clock has no bar
            series.setdefault((bucket["queue"], bucket["fingerprint"]),
                              [0] * SPARK_HOURS)[index] += bucket["n"]
    return series


@requires(VIEW)
def failures_page(request: HttpRequest) -> HttpResponse:
    form = FailuresFilter(request.GET, queues=queue_names())
    if not form.is_valid():
        return refused_filter(form)
    status, queue = form.cleaned_data["status"], form.cleaned_data["queue"]
    groups, capped = failure_groups(status, queue)
    # Group actions act on open rows, so they are offered on the open groups only.
    can = {action: status == DeadLetter.Status.OPEN and request.user.has_perm(permission)
           for action, (permission, _) in GROUP_ACTIONS.items()}
    return render(request, "admin/dashboard/failures.html", "Failures", form=form,
                  groups=groups, capped=capped, max_groups=MAX_GROUPS, status=status,
                  queue=queue, can_requeue=can["requeue"], can_archive=can["archive"],
                  show_actions=any(can.values()))


@acts(VIEW)
def group_action(request: HttpRequest, queue: str, fingerprint: str,
                 action: services.GroupAction) -> HttpResponse:
    """Requeue or archive every open dead letter of one group; say what happened."""
    permission, verb = GROUP_ACTIONS[action]
    if not request.user.has_perm(permission):
        raise PermissionDenied(f"{action} all needs the {permission} permission")
    if not _FINGERPRINT.fullmatch(fingerprint):
        return refused("That is not a failure group's fingerprint.")
    result = services.act_on_group(queue, fingerprint, action,
                                   actor=request.user.get_username())
    back = reverse("dashboard-failures")
    if request.POST.get("queue_filter"):
        back += "?" + QueryDict.fromkeys(["queue"], request.POST["queue_filter"]).urlencode()
    if result.failed:
        messages.error(request, ngettext(
            "%(n)d dead letter not %(verb)s: %(why)s", "%(n)d dead letters not %(verb)s: %(why)s",
            result.failed) % {"n": result.failed, "verb": verb,
                              "why": "; ".join(result.errors[:MAX_ERRORS_SHOWN])})
    if result.done:
        return acted(request, ngettext("%(verb)s %(n)d dead letter.",
                                       "%(verb)s %(n)d dead letters.", result.done)
                     % {"verb": verb.capitalize(), "n": result.done}, back)
    return acted(request, f"No dead letter of this group was {verb}." if result.failed
                 else "No open dead letters in this group.", back, level=messages.WARNING)


class AuditFilter(forms.Form):
    actor = forms.CharField(max_length=150, required=False)
    action = forms.ChoiceField(required=False)
    target_type = forms.ChoiceField(required=False, label="Target type")
    queue = forms.CharField(max_length=64, required=False)
    job_id = forms.CharField(max_length=300, required=False, label="Job id starts with")
    before = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, data: QueryDict) -> None:
        super().__init__(data)
        for name, anything in (("action", "any action"), ("target_type", "any target")):
            present = AuditEvent.objects.order_by(name).values_list(name, flat=True).distinct()
            cast(forms.ChoiceField, self.fields[name]).choices = [
                ("", anything), *((v, v) for v in present)]
        for name in ("from", "to"):  # a date range: from and to are days, both included
            self.fields[name] = forms.DateField(
                required=False, input_formats=["%Y-%m-%d"], label=name.capitalize(),
                widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}))

    def clean_before(self) -> tuple[datetime, int] | None:
        """The position after which the page starts: (created_at, id), or None."""
        raw = self.cleaned_data["before"]
        if not raw:
            return None
        match = _CURSOR.fullmatch(raw)
        if not match:
            raise forms.ValidationError(
                "Not a position in the audit trail (the older link's <microseconds>.<id>).")
        return _EPOCH + int(match[1]) * _MICROSECOND, int(match[2])

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("from") and data.get("to") and data["from"] > data["to"]:
            raise forms.ValidationError("The range starts after it ends.")
        return data


def audit_events(data: dict[str, Any]) -> QuerySet[AuditEvent]:
    """Audit events matching a clean ``AuditFilter``, newest first (ties: highest id)."""
    events = AuditEvent.objects.order_by("-created_at", "-id")
    for name in ("actor", "action", "target_type", "queue"):
        if data[name]:
            events = events.filter(**{name: data[name]})
    if data["job_id"]:
        events = events.filter(job_id__startswith=data["job_id"])
    if data["from"]:
        events = events.filter(created_at__gte=datetime.combine(data["from"], time.min, UTC))
    if data["to"]:
        events = events.filter(
            created_at__lt=datetime.combine(data["to"] + timedelta(days=1), time.min, UTC))
    if data["before"]:
        at, pk = data["before"]
        events = events.filter(Q(created_at__lt=at) | Q(created_at=at, id__lt=pk))
    return events


def cursor(event: AuditEvent) -> str:
    """The position of ``event`` in the audit order, for the "older" link."""
    return f"{(event.created_at - _EPOCH) // _MICROSECOND}.{event.pk}"


@dataclass(frozen=True)
class AuditRow:
    """One audit event as the page shows it."""

    event: AuditEvent
    target: str  # "dead letter 12", "queue photo-processing"
    target_url: str
    details: str  # compact JSON of the details that say something
    job_ids: list[str]
    more_job_ids: int
    job_ids_truncated: bool


def audit_rows(events: list[AuditEvent]) -> list[AuditRow]:
    """The page's rows: each event with a link to what it touched (if that still exists)."""
    existing = {
        "dead_letter": _existing(DeadLetter.objects.all(), events, "dead_letter"),
        "recurring": _existing(PeriodicTask.objects.all(), events, "recurring"),
        "queue": set(registry.all_specs())}
    rows = []
    for event in events:
        details = {k: v for k, v in event.details.items() if v not in ("", None)} if (
            isinstance(event.details, dict)) else {"details": event.details}
        listed = details.pop("job_ids", None)
        job_ids = [str(j) for j in listed] if isinstance(listed, list) else []
        truncated = bool(details.pop("job_ids_truncated", False))
        rows.append(AuditRow(
            event=event, target_url=_target_url(event, existing),
            target=f"{event.target_type.replace('_', ' ')} {event.target_id}".strip(),
            job_ids_truncated=truncated, details=_compact(details),
            job_ids=job_ids[:MAX_JOB_IDS_SHOWN],
            more_job_ids=max(0, len(job_ids) - MAX_JOB_IDS_SHOWN)))
    return rows


def _compact(details: dict[str, Any]) -> str:
    """``details`` as one line of JSON, at most ``DETAILS_LENGTH`` characters ("" if none)."""
    text = json.dumps(details, ensure_ascii=False, sort_keys=True, default=str) if details else ""
    return text if len(text) <= DETAILS_LENGTH else text[:DETAILS_LENGTH - 1] + "…"


def _existing(rows: QuerySet[Any], events: list[AuditEvent], target_type: str) -> set[str]:
    """Which of the events' ``target_type`` targets still exist (by pk, one query)."""
    ids = {int(e.target_id) for e in events
           if e.target_type == target_type and e.target_id.isdigit()}
    return {str(pk) for pk in rows.filter(pk__in=ids).values_list("pk", flat=True)}


def _target_url(event: AuditEvent, existing: dict[str, set[str]]) -> str:
    """The page of what ``event`` touched, or "" (gone, or nothing to show)."""
    kind = event.target_type
    page = _TARGET_PAGES.get(kind)
    if page is None or (kind in existing and event.target_id not in existing[kind]):
        return ""
    try:
        return reverse(page[0], args=page[1](event))
    except NoReverseMatch:  # an empty queue or an id the URL cannot carry: show it as text
        return ""


# The page of each target type the services write (grep target_type= in the apps).
_TARGET_PAGES: dict[str, tuple[str, Callable[[AuditEvent], list[str]]]] = {
    "job": ("dashboard-job", lambda e: [e.queue, e.target_id]),
    "queue": ("dashboard-queue", lambda e: [e.target_id]),
    "worker": ("dashboard-workers", lambda e: []),
    "dead_letter": ("admin:deadletter_deadletter_change", lambda e: [e.target_id]),
    "recurring": ("admin:django_celery_beat_periodictask_change", lambda e: [e.target_id]),
}


@requires(VIEW)
def audit_page(request: HttpRequest) -> HttpResponse:
    form = AuditFilter(request.GET)
    if not form.is_valid():
        return refused_filter(form)
    page = list(audit_events(form.cleaned_data)[:PAGE_SIZE + 1])
    older = ""
    if len(page) > PAGE_SIZE:
        page = page[:PAGE_SIZE]
        query = request.GET.copy()
        query["before"] = cursor(page[-1])
        older = query.urlencode()
    newest = request.GET.copy()
    newest.pop("before", None)
    return render(request, "admin/dashboard/audit.html", "Audit", form=form,
                  rows=audit_rows(page), older=older, newest=newest.urlencode(),
                  paged=bool(form.cleaned_data["before"]), page_size=PAGE_SIZE)


urlpatterns = [
    path("failures/", failures_page, name="dashboard-failures"),
    path("failures/<str:queue>/<str:fingerprint>/requeue", group_action,
         {"action": "requeue"}, name="dashboard-failures-requeue"),
    path("failures/<str:queue>/<str:fingerprint>/archive", group_action,
         {"action": "archive"}, name="dashboard-failures-archive"),
    path("audit/", audit_page, name="dashboard-audit"),
]
