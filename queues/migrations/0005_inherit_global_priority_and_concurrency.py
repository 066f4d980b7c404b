"""Queue types inherit DEFAULT_WORKER_CONCURRENCY; the built-ins DEFAULT_JOB_PRIORITY too.

- ``concurrency`` becomes nullable (empty: DEFAULT_WORKER_CONCURRENCY). It sized
  nothing before this release, so every stored 1 (the old column default) is
  cleared: those workers keep the pool size they had. Another value now sizes
  the pool of a worker serving only that queue (``workers.concurrency``).
- The seed (§5.1) gives the built-in types no priority: 0002 wrote 0 into them
  only because the column was not nullable then. A built-in whose priority was
  changed since keeps it.
"""

import django.core.validators
from django.db import migrations, models

BUILTIN_NAMES = ["photo-processing", "batch-processing", "maintenance"]


def inherit(apps, schema_editor):
    QueueType = apps.get_model("queues", "QueueType")
    QueueType.objects.filter(concurrency=1).update(concurrency=None)
    QueueType.objects.filter(name__in=BUILTIN_NAMES, default_priority=0).update(
        default_priority=None)


def explicit(apps, schema_editor):
    QueueType = apps.get_model("queues", "QueueType")
    QueueType.objects.filter(concurrency=None).update(concurrency=1)
    QueueType.objects.filter(name__in=BUILTIN_NAMES, default_priority=None).update(
        default_priority=0)


class Migration(migrations.Migration):

    dependencies = [
        ("queues", "0004_inherit_global_job_defaults_and_time_limits"),
    ]

    operations = [
        migrations.AlterField(
            model_name="queuetype",
            name="concurrency",
            field=models.PositiveIntegerField(
                blank=True, null=True, validators=[django.core.validators.MinValueValidator(1)],
                help_text="Pool size of a worker serving only this queue when -c is not given. "
                          "Empty: DEFAULT_WORKER_CONCURRENCY."),
        ),
        migrations.RunPython(inherit, explicit),
    ]
