"""Admin for dead letters (review, requeue, archive, purge) and the audit log.

Both are read-only; the actions call ``deadletter.services``, which writes the
audit events. Each action asks for confirmation first, like Django's own
``delete_selected``, and needs its own permission.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from deadletter import services
from deadletter.models import AuditEvent, DeadLetter
from queues.exceptions import CoordinatorError

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

PREVIEW = 20


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _confirm(admin_obj: DeadLetterAdmin, request: HttpRequest, queryset: QuerySet[DeadLetter],
             *, action: str, question: StrOrPromise, with_reason: bool = False) -> TemplateResponse:
    rows = list(queryset)
    return TemplateResponse(request, "admin/coordinator/confirm_action.html", {
        **admin_obj.admin_site.each_context(request), "opts": admin_obj.model._meta,
        "title": _("Are you sure?"), "question": question, "action": action,
        "queryset": rows, "preview": rows[:PREVIEW], "more": max(0, len(rows) - PREVIEW),
        "with_reason": with_reason,
    })


def _run_each(admin_obj: DeadLetterAdmin, request: HttpRequest, queryset: QuerySet[DeadLetter],
              op: Callable[[DeadLetter], Any], verb: str) -> None:
    done, failed = 0, []
    for row in queryset:
        try:
            op(row)
        except CoordinatorError as exc:
            failed.append(f"{row.pk}: {exc}")
            continue
        admin_obj.log_change(request, row, f"{verb} from the dead-letter admin")
        done += 1
    admin_obj.message_user(request, ngettext(
        "%(n)d dead letter %(verb)s.", "%(n)d dead letters %(verb)s.", done)
        % {"n": done, "verb": verb}, messages.SUCCESS)
    if failed:
        admin_obj.message_user(request, _("Not %(verb)s: %(items)s") % {
            "verb": verb, "items": "; ".join(failed[:10])}, messages.ERROR)


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdmin):
    list_display = ("job_id", "queue", "job_name", "error_type", "reason", "attempts",
                    "failed_at", "status")
    list_filter = ("queue", "error_type", "reason", "status",
                   ("failed_at", admin.DateFieldListFilter))
    search_fields = ("job_id", "error_message")
    date_hierarchy = "failed_at"
    list_select_related = ("previous",)
    actions = ["requeue", "archive", "purge"]
    fields = ("job_id", "queue", "job_name", "status", "reason", "error_type", "error_message",
              "attempts", "failed_at", "pretty_payload", "pretty_options", "pretty_traceback",
              "trace_id", "requeued_as", "previous", "root_job_id", "acted_by", "acted_at")
    readonly_fields = fields

    @admin.display(description=_("payload"))
    def pretty_payload(self, obj: DeadLetter) -> str:
        # format_html escapes: a payload holding "<script>" is shown as text.
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, sort_keys=True))

    @admin.display(description=_("options"))
    def pretty_options(self, obj: DeadLetter) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.options, indent=2, sort_keys=True))

    @admin.display(description=_("traceback"))
    def pretty_traceback(self, obj: DeadLetter) -> str:
        return format_html("<pre>{}</pre>", obj.traceback)

    def has_requeue_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("deadletter.requeue_deadletter")

    def has_archive_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("deadletter.archive_deadletter")

    def has_purge_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("deadletter.purge_deadletter")

    def _per_row(self, request: HttpRequest, queryset: QuerySet[DeadLetter], *, action: str,
                 question: StrOrPromise, service: Callable[..., Any],
                 verb: str) -> HttpResponse | None:
        """Confirm first; then call ``service`` for each row with the actor and reason."""
        if request.POST.get("post") != "yes":
            return _confirm(self, request, queryset, action=action, with_reason=True,
                            question=question)
        reason = request.POST.get("reason", "")[:500]
        actor = request.user.get_username()
        _run_each(self, request, queryset,
                  lambda row: service(row.pk, actor=actor, reason=reason), verb)
        return None

    @admin.action(description=_("Requeue selected dead letters"), permissions=["requeue"])
    def requeue(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> HttpResponse | None:
        return self._per_row(request, queryset, action="requeue", verb="requeued",
                             question=_("Requeue these dead letters as new jobs?"),
                             service=services.requeue_dead_letter)

    @admin.action(description=_("Archive selected dead letters"), permissions=["archive"])
    def archive(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> HttpResponse | None:
        return self._per_row(request, queryset, action="archive", verb="archived",
                             question=_("Archive these dead letters (they will not be requeued)?"),
                             service=services.archive_dead_letter)

    @admin.action(description=_("Purge selected dead letters"), permissions=["purge"])
    def purge(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> HttpResponse | None:
        if request.POST.get("post") != "yes":
            return _confirm(self, request, queryset, action="purge",
                            question=_("Delete these dead letters for good?"))
        deleted = 0
        by_queue: dict[str, list[int]] = {}
        for queue, pk in queryset.values_list("queue", "pk"):
            by_queue.setdefault(queue, []).append(pk)
        for queue, ids in by_queue.items():
            try:
                deleted += services.purge_dead_letters(
                    queue, ids=ids, actor=request.user.get_username())
            except CoordinatorError as exc:
                self.message_user(request, f"{queue}: {exc}", messages.ERROR)
        self.message_user(request, ngettext("%(n)d dead letter purged.",
                                            "%(n)d dead letters purged.", deleted)
                          % {"n": deleted}, messages.SUCCESS)
        return None


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "actor", "action", "target_type", "target_id", "queue",
                    "job_id")
    list_filter = ("action", "target_type", "queue", ("created_at", admin.DateFieldListFilter))
    search_fields = ("actor", "target_id", "^job_id")
    date_hierarchy = "created_at"
    readonly_fields = ("created_at", "actor", "action", "target_type", "target_id", "queue",
                       "job_id", "details")
