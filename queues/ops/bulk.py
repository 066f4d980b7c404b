"""Acting on many jobs of one queue at once: the dashboard's per-job and bulk actions.

An action is a service function applied job by job (``cancel_job``,
``promote_job``, ``change_priority``; ``deadletter`` adds ``retry``, the requeue of
a failed job's dead letter, at start-up through ``register``), so a bulk action
writes the same audit events as the ops API and the CLI, one per job.

``act`` runs an action on a list of ids (the rows an operator ticked, at most a
page); ``start`` runs it on **every** job matching a tab's filter as the
``bulk-action`` job on the ``maintenance`` queue, which collects the matching ids
first (``browse.walk``), then acts on them in chunks, reporting its progress (the
job's progress bar and log lines on its dashboard page): no request waits for it,
however many jobs match.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from queues import jobs, options, signals
from queues.exceptions import DeadLetterError, InvalidJobState, JobNotFound, JobValidationError
from queues.jobs import JobContext, JobHandle, job
from queues.ops import browse

CHUNK = 500
ERRORS_KEPT = 20  # per result: the first few reasons a job was skipped
# a job in another state than the action takes, or gone: skipped, the others go on
SKIPPED = (JobNotFound, InvalidJobState, DeadLetterError)

# (queue, job id, actor, params) -> None; raises JobNotFound / InvalidJobState to skip
Apply = Callable[[str, str, str, dict[str, Any]], None]


@dataclass(frozen=True)
class Action:
    """What an operator may do to a job, in which states, with which permission."""

    name: str
    label: str  # a verb for buttons and reports: "Cancel", "Retry"
    done: str  # the report's past participle: "cancelled"
    states: frozenset[str]  # the tabs it is offered on
    permission: str  # Django permission the dashboard requires
    apply: Apply


ACTIONS: dict[str, Action] = {}
MANAGE = "queues.manage_jobs"


def register(action: Action) -> None:
    """Offer ``action`` on the dashboard (an app adds its own at start-up)."""
    ACTIONS[action.name] = action


def action(name: str) -> Action:
    """The registered action ``name``.

    Raises:
        JobValidationError: no such action.
    """
    try:
        return ACTIONS[name]
    except KeyError:
        raise JobValidationError(f"unknown action {name!r}; one of {', '.join(sorted(ACTIONS))}",
                                 field="action") from None


def _priority(params: dict[str, Any]) -> int:
    """The ``priority`` param, checked as the job option it becomes.

    Raises:
        JobValidationError: missing, not a whole number, or outside 0-9.
    """
    value = params.get("priority")
    try:
        priority = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise JobValidationError(f"priority must be a whole number 0-9, not {value!r}",
                                 field="priority") from None
    options.parse({"priority": priority}, where="priority")
    return priority


def _cancel(queue: str, job_id: str, actor: str, params: dict[str, Any]) -> None:
    jobs.cancel_job(queue, job_id, actor=actor)


def _promote(queue: str, job_id: str, actor: str, params: dict[str, Any]) -> None:
    jobs.promote_job(queue, job_id, actor=actor)


def _change_priority(queue: str, job_id: str, actor: str, params: dict[str, Any]) -> None:
    jobs.change_priority(queue, job_id, _priority(params), actor=actor)


_NOT_ENDED = frozenset({"waiting-children", "waiting", "delayed", "limited", "paused", "active"})
register(Action("cancel", "Cancel", "cancelled", _NOT_ENDED, MANAGE, _cancel))
register(Action("promote", "Run now", "promoted", frozenset({"delayed"}), MANAGE, _promote))
register(Action("priority", "Set priority", "given the new priority",
                frozenset({"waiting", "delayed", "limited"}), MANAGE, _change_priority))


def offered(state: str) -> list[Action]:
    """The actions of a tab, in registration order."""
    return [a for a in ACTIONS.values() if state in a.states]


@dataclass
class BulkResult:
    """How an action went: jobs done, jobs skipped (gone, or in another state now)."""

    action: str
    done: int = 0
    skipped: int = 0
    reasons: list[str] = field(default_factory=list)  # the first ``ERRORS_KEPT``

    def report(self) -> str:
        """One sentence for the operator: "3 jobs cancelled; 1 skipped (…)."."""
        done = ACTIONS[self.action].done if self.action in ACTIONS else self.action
        text = f"{self.done} job{'' if self.done == 1 else 's'} {done}"
        if self.skipped:
            text += f"; {self.skipped} skipped ({'; '.join(self.reasons[:3])})"
        return text + "."


def act(queue: str, name: str, job_ids: Iterable[str], *, actor: str,
        params: dict[str, Any] | None = None,
        progress: Callable[[BulkResult], bool] | None = None) -> BulkResult:
    """Apply action ``name`` to each of ``job_ids``; a job that is gone or in a state
    the action does not take is skipped with its reason, the rest go on.

    ``progress`` is called after every ``CHUNK`` jobs; when it returns False the
    action stops there (the result says how far it got).

    Raises:
        JobValidationError: an unknown action, or bad ``params`` (before anything is done).
        BackendUnavailable: Redis is unreachable (the jobs before it are done).
    """
    chosen, params = action(name), params or {}
    if name == "priority":
        _priority(params)
    result = BulkResult(name)
    for n, job_id in enumerate(job_ids, 1):
        try:
            chosen.apply(queue, job_id, actor, params)
            result.done += 1
        except SKIPPED as exc:
            result.skipped += 1
            if len(result.reasons) < ERRORS_KEPT:
                result.reasons.append(str(exc))
        if progress is not None and n % CHUNK == 0 and not progress(result):
            break
    return result


def start(queue: str, name: str, *, state: str, text: str = "", job_type: str = "",
          actor: str, params: dict[str, Any] | None = None) -> JobHandle:
    """Run action ``name`` on every job of ``queue`` in ``state`` matching ``text`` and
    ``job_type``, as a ``bulk-action`` job on the maintenance queue. Audited as
    ``bulk_action`` with the filter; each job it touches is audited by its action.

    Raises:
        QueueTypeNotFound: ``queue`` is not registered.
        JobValidationError: an unknown action or state, an action the state does not
            offer, or bad ``params``.
    """
    chosen = action(name)
    browse.check_tab(queue, state)
    if state not in chosen.states:
        raise JobValidationError(f"{chosen.label!r} is not offered on {state} jobs",
                                 field="action")
    if name == "priority":
        _priority(params or {})
    handle = jobs.enqueue("maintenance", "bulk-action", {
        "queue": queue, "action": name, "state": state, "text": text, "job_type": job_type,
        "actor": actor, "params": params or {}})
    signals.announce(actor, "bulk_action", target_type="queue", target_id=queue, queue=queue,
                     action_name=name, state=state, text=text, job_type=job_type,
                     job_id=handle.id)
    return handle


@job("maintenance", "bulk-action", attempts=1, remove_on_complete=100)
def bulk_action(data: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Collect the jobs matching a filter, then act on them a chunk at a time;
    progress 0-10 % while collecting, 10-100 % while acting. Stops early, with what
    it did so far, when cancelled."""
    queue, name = data["queue"], data["action"]
    matched: list[str] = []
    for rows, looked_at, total in browse.walk(queue, data["state"], text=data["text"],
                                              job_type=data["job_type"]):
        matched += [row.job_id for row in rows]
        ctx.progress(10 * looked_at // max(total, 1))
    ctx.log(f"{len(matched)} {data['state']} jobs match; {name} in chunks of {CHUNK}")

    def report(result: BulkResult) -> bool:
        ctx.progress(10 + 90 * (result.done + result.skipped) // max(len(matched), 1))
        ctx.log(f"{result.done + result.skipped} of {len(matched)}: {result.report()}")
        if ctx.cancelled:
            ctx.log("cancelled; stopping after this chunk", level="warning")
        return not ctx.cancelled

    result = act(queue, name, matched, actor=data["actor"], params=data["params"],
                 progress=report)
    ctx.progress(100)
    ctx.log(result.report())
    return {"matched": len(matched), "done": result.done, "skipped": result.skipped,
            "reasons": result.reasons}
