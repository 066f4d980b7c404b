"""Key names carry the prefix and the queue's hash tag."""

from __future__ import annotations

from django.test import override_settings

from queues.store import keys


def test_queue_keys_share_one_hash_tag() -> None:
    with override_settings(COORDINATOR_REDIS_KEY_PREFIX="jq:"):
        names = [keys.job("photo-processing", "1"), keys.state_index("photo-processing", "waiting"),
                 keys.stats("photo-processing"), keys.job_logs("photo-processing", "1")]
    assert all(name.startswith("jq:{photo-processing}:") for name in names)


def test_default_prefix_is_the_seeds() -> None:
    assert keys.prefix() == "photo-queue:"
