"""Admin → Job health: queues, the outbox backlog, connection errors, failed jobs."""

from __future__ import annotations

from collections.abc import Callable

from flask import flash, redirect, url_for
from flask_babel import gettext as _
from redis.exceptions import RedisError

from portal.org import health
from portal.web.admin import bp
from portal.web.render import render


@bp.get("/jobs")
def jobs():
    """Queues, the outbox backlog, connection errors, and failed jobs (retry / discard)."""
    redis_error = ""
    stats, failed = None, []
    try:
        stats = health.queue_stats()
        failed = health.failed_jobs()
    except RedisError as exc:
        redis_error = str(exc) or type(exc).__name__
    counts, backlog = health.outbox_backlog()
    return render(
        "admin/jobs.html",
        "jobs",
        stats=stats,
        failed=failed,
        redis_error=redis_error,
        counts=counts,
        backlog=backlog,
        connections=health.connections_health(),
    )


def _job_action(act: Callable[[str], bool], job_id: str, done: str):
    """Retry or discard a failed job, then back to the list saying what happened."""
    try:
        ok = act(job_id)
    except RedisError as exc:
        ok, message = False, _("Redis is unavailable: %(error)s", error=exc)
    else:
        message = done if ok else _("That job is no longer failed.")
    flash(message, "info" if ok else "error")
    return redirect(url_for("admin.jobs"))


@bp.post("/jobs/<job_id>/retry")
def retry_job(job_id: str):
    return _job_action(health.retry_failed, job_id, _("Job %(job)s is queued again.", job=job_id))


@bp.post("/jobs/<job_id>/discard")
def discard_job(job_id: str):
    return _job_action(health.discard_failed, job_id, _("Job %(job)s was discarded.", job=job_id))
