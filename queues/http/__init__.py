"""The web room: the ops HTTP API (``api``, django-ninja), its JWT auth (``auth``) and
the open process probes and metrics endpoint (``probes``: ``/health``, ``/ready``,
``/metrics``).

The top of ``queues``: it may import every other room; nothing in ``queues`` but the
app's entry points (``apps``, ``admin``, ``management``) imports it.
"""
