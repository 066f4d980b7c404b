"""Queue management (DESIGN §5 ``queues.manager``); the code is ``queues.ops.manager``."""

from queues.ops.manager import (
    clean_queue,
    create_queue,
    destroy_queue,
    list_queues,
    pause_queue,
    queue_status,
    resume_queue,
)

__all__ = ["clean_queue", "create_queue", "destroy_queue", "list_queues", "pause_queue",
           "queue_status", "resume_queue"]
