"""The web room: the ops HTTP API (``api``, django-ninja), its JWT auth (``auth``),
the open process probes and metrics endpoint (``probes``: ``/health``, ``/ready``,
``/metrics``) and the dashboard inside admin (``dashboard``; templates in
``queues/templates/admin/dashboard/``, static files in ``queues/static/queues/``).

The top of ``queues``: it may import every other room; nothing in ``queues`` but the
app's entry points (``apps``, ``admin``, ``management``) imports it.
"""
