"""Job health: queue counts, the outbox backlog, connection errors, failed jobs (retry / discard).

Failed jobs are real: an outbox row whose kind has no handler is run by a real
RQ worker (burst mode) against the test Redis and lands in RQ's failed registry.
"""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from portal.models import Connection, Outbox, db, to_db, utcnow
from portal.org import health
from portal.runtime.queue import get_queue
from portal.runtime.worker import run_worker
from tests.support.app import AuthActions


@pytest.fixture
def ada(hosts):
    return hosts.create("ada", name="Ada Admin", admin=True)


def failing_job(app) -> str:
    """An outbox row RQ cannot run (no handler), enqueued without retries and run once."""
    with app.app_context(), db.connection_context():
        row = Outbox.add("no_such_kind", thing=1)
        Outbox.update(status="enqueued").where(Outbox.id == row.id).execute()
        get_queue().enqueue("jobs.outbox.run", row.id, job_id=f"outbox-{row.id}")
    run_worker(app, burst=True)
    return f"outbox-{row.id}"


def test_jobs_page_shows_queue_backlog_connections_and_failures(app, client, ada):
    job_id = failing_job(app)
    with app.app_context(), db.connection_context():
        Outbox.add("notify", booking_id=1, event="created")  # waiting for the relay
        Connection.create(
            user=ada.id,
            provider="ics",
            label="https://feeds.example/rota.ics",
            status="error",
            last_error="the feed could not be fetched: timed out",
            last_synced_at=to_db(utcnow()),
        )
        stats = health.queue_stats()
        assert stats.failed == 1 and stats.queued == 0
        counts, rows = health.outbox_backlog()
        assert counts == {"pending": 1, "enqueued": 1, "failed": 0}
        assert [r.kind for r in rows] == ["no_such_kind", "notify"]  # in progress before waiting
    AuthActions(client).login("ada@example.com")
    page = client.get("/settings/admin/jobs").get_data(as_text=True)
    assert job_id in page and "LookupError: no outbox handler for &#39;no_such_kind&#39;" in page
    assert "Pending <strong>1</strong>" in page and "Enqueued <strong>1</strong>" in page
    assert "https://feeds.example/rota.ics" in page and "timed out" in page
    assert "no worker is running" in page


def test_retry_puts_the_job_back_on_the_queue(app, client, ada):
    job_id = failing_job(app)
    auth = AuthActions(client)
    auth.login("ada@example.com")
    answer = auth.post(f"/settings/admin/jobs/{job_id}/retry")
    assert answer.status_code == 302 and answer.headers["Location"] == "/settings/admin/jobs"
    assert f"Job {job_id} is queued again." in client.get("/settings/admin/jobs").get_data(
        as_text=True
    )
    with app.app_context(), db.connection_context():
        queue = get_queue()
        assert queue.count == 1 and queue.failed_job_registry.count == 0
        row = Outbox.get_by_id(int(job_id.removeprefix("outbox-")))
        assert row.status == "enqueued"
    # Retrying a job that is not failed (any more) says so.
    auth.post(f"/settings/admin/jobs/{job_id}/retry")
    assert "no longer failed" in client.get("/settings/admin/jobs").get_data(as_text=True)


def test_discard_forgets_the_job(app, client, ada):
    job_id = failing_job(app)
    auth = AuthActions(client)
    auth.login("ada@example.com")
    assert auth.post(f"/settings/admin/jobs/{job_id}/discard").status_code == 302
    with app.app_context(), db.connection_context():
        queue = get_queue()
        assert queue.failed_job_registry.count == 0 and queue.count == 0
        assert health.failed_jobs() == []
    page = client.get("/settings/admin/jobs").get_data(as_text=True)
    assert f"Job {job_id} was discarded." in page and "No failed jobs." in page
    assert auth.post("/settings/admin/jobs/nope/discard").status_code == 302


def test_jobs_page_survives_redis_being_down(app, client, ada, monkeypatch):
    def down():
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(health, "_queue", down)
    auth = AuthActions(client)
    auth.login("ada@example.com")
    answer = client.get("/settings/admin/jobs")
    assert answer.status_code == 200
    assert "Redis is unavailable: Connection refused" in answer.get_data(as_text=True)
    retry = auth.post("/settings/admin/jobs/outbox-1/retry")
    assert retry.status_code == 302
