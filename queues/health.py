"""Queue health (DESIGN §5 ``queues.health``); the code is ``queues.ops.health``."""

from queues.ops.health import analyze_bottlenecks, optimize_queue, queue_health

__all__ = ["analyze_bottlenecks", "optimize_queue", "queue_health"]
