"""The three queue types of the design's §5.1, with its values.

The seed gives them no priority: ``default_priority`` stays empty (0005 clears
the 0 this migration wrote while the column was not nullable), so the built-ins
inherit DEFAULT_JOB_PRIORITY.
"""

from django.db import migrations

BUILTIN = [
    {
        "name": "photo-processing", "display_name": "Photo Processing",
        "description": "Main queue for photo processing operations",
        "job_types": ["process-photo", "generate-thumbnails", "extract-metadata"],
        "default_attempts": 3, "backoff_type": "exponential", "backoff_delay_ms": 2000,
        "remove_on_complete": 100, "remove_on_fail": 50,
        "stalled_interval_ms": 30000, "retry_process_delay_ms": 5000, "max_stalled_count": 1,
        "min_workers": 2, "max_workers": 10, "scaling_threshold": 50,
    },
    {
        "name": "batch-processing", "display_name": "Batch Processing",
        "description": "Queue for batch operations on multiple photos",
        "job_types": ["batch-process", "batch-cleanup"],
        "default_attempts": 2, "backoff_type": "exponential", "backoff_delay_ms": 5000,
        "remove_on_complete": 20, "remove_on_fail": 20,
        "stalled_interval_ms": 60000, "retry_process_delay_ms": 10000, "max_stalled_count": 1,
        "min_workers": 1, "max_workers": 3, "scaling_threshold": 10,
    },
    {
        "name": "maintenance", "display_name": "System Maintenance",
        "description": "Queue for system maintenance and cleanup tasks",
        "job_types": ["cleanup-orphans", "consistency-check", "metrics-aggregation"],
        "default_attempts": 1, "backoff_type": "fixed", "backoff_delay_ms": 60000,
        "remove_on_complete": 10, "remove_on_fail": 10,
        "stalled_interval_ms": 120000, "retry_process_delay_ms": 30000, "max_stalled_count": 1,
        "min_workers": 1, "max_workers": 2, "scaling_threshold": 5,
    },
]


def create(apps, schema_editor):
    QueueType = apps.get_model("queues", "QueueType")
    for row in BUILTIN:
        QueueType.objects.update_or_create(name=row["name"], defaults=row)


def remove(apps, schema_editor):
    QueueType = apps.get_model("queues", "QueueType")
    QueueType.objects.filter(name__in=[row["name"] for row in BUILTIN]).delete()


class Migration(migrations.Migration):
    dependencies = [("queues", "0001_initial")]
    operations = [migrations.RunPython(create, remove)]
