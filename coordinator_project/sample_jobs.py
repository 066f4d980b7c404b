"""Sample jobs of the design's §4.1 types, for the demo workload.

They stand for an application's own job modules: schemas from §4.1, work
simulated with short sleeps, progress and log lines reported as real jobs do.
Which modules declare jobs is the ``JOB_MODULES`` setting.
"""

from __future__ import annotations

import random
import time
from typing import Literal

from pydantic import BaseModel, Field

from queues.jobs import JobContext, job


class Storage(BaseModel):
    s3Key: str
    bucket: str
    originalSize: int = Field(ge=0)
    mimeType: str
    etag: str | None = None


class ProcessingStage(BaseModel):
    name: str
    enabled: bool = True
    timeout: int | None = None


class Pipeline(BaseModel):
    name: str
    stages: list[ProcessingStage]
    priority: int = 0


class PhotoContext(BaseModel):
    clientId: str
    uploadedAt: str
    traceId: str
    sessionId: str | None = None


class PhotoMetadata(BaseModel):
    fileSize: int = Field(ge=0)
    originalFilename: str | None = None


class PhotoProcessingJob(BaseModel):
    """Seed §4.1 ``PhotoProcessingJob``."""

    photoId: str
    storage: Storage
    pipeline: Pipeline
    context: PhotoContext
    metadata: PhotoMetadata


class BatchProcessingJob(BaseModel):
    """Seed §4.1 ``BatchProcessingJob``."""

    batchId: str
    photoIds: list[str] = Field(min_length=1)
    batchSize: int = Field(ge=1)
    pipeline: str
    clientId: str


class PhotoRef(BaseModel):
    photoId: str
    sizes: list[Literal["small", "medium", "large"]] = ["small", "medium"]


def _work(ms: float) -> None:
    time.sleep(ms * random.uniform(0.5, 1.5) / 1000)


@job("photo-processing", "process-photo", schema=PhotoProcessingJob)
def process_photo(data: PhotoProcessingJob, ctx: JobContext) -> dict[str, object]:
    stages = [s.name for s in data.pipeline.stages if s.enabled]
    for done, _stage in enumerate(stages, start=1):
        _work(40)
        ctx.progress(int(done * 100 / len(stages)))
    ctx.log(f"processed {data.photoId} through {len(stages)} stages")
    return {"photoId": data.photoId, "stages": stages}


@job("photo-processing", "generate-thumbnails", schema=PhotoRef)
def generate_thumbnails(data: PhotoRef, ctx: JobContext) -> dict[str, object]:
    _work(30 * len(data.sizes))
    return {"photoId": data.photoId, "thumbnails": data.sizes}


@job("photo-processing", "extract-metadata", schema=PhotoRef)
def extract_metadata(data: PhotoRef, ctx: JobContext) -> dict[str, object]:
    _work(20)
    return {"photoId": data.photoId, "exif": {"camera": "demo"}}


@job("batch-processing", "batch-process", schema=BatchProcessingJob)
def batch_process(data: BatchProcessingJob, ctx: JobContext) -> dict[str, object]:
    for done, _photo in enumerate(data.photoIds, start=1):
        _work(15)
        ctx.progress(int(done * 100 / len(data.photoIds)))
    ctx.log(f"batch {data.batchId}: {len(data.photoIds)} photos")
    return {"batchId": data.batchId, "processed": len(data.photoIds)}


@job("batch-processing", "batch-cleanup")
def batch_cleanup(data: dict[str, object], ctx: JobContext) -> dict[str, object]:
    _work(20)
    return {"batchId": data.get("batchId"), "cleaned": True}
