"""Deployments, declared once: `rememberme serve` registers and serves them (a Prefect runner).

- `instant-restore/on-demand`: started by `rememberme restore`, `prefect deployment run`, the UI,
  or the REST API (README); one run per (owner, persona) at a time (a concurrency limit inside).
- `data-recycling/nightly`: cron from settings (default 03:00 Asia/Seoul); at most one run at a
  time, a late run is cancelled rather than stacked (the next one picks its files up anyway).
- `train-base/weekly`: pretrains the shared base (Sunday 04:00); personas fine-tune from the newest.
- `train-voice-base/weekly`: pretrains the multi-speaker voice base (Sunday 05:00).
- `forget/on-request`: deletes a data subject and tombstones it.

Production runs the same deployments from `infra/prefect.yaml` on work pools instead.
"""

from __future__ import annotations

from typing import Any

from prefect import serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.schedules import Cron

from flows.base import train_base, train_voice_base
from flows.forget import forget
from flows.recycle import data_recycling
from flows.restore import instant_restore
from infra.settings import Settings
from infra.version import CODE_VERSION


def deployments(settings: Settings) -> list[Any]:
    """The deployments of the pipeline."""
    return [
        instant_restore.to_deployment(
            name="on-demand",
            tags=["rememberme", "restore"],
            version=CODE_VERSION,
            description="Restore a persona from uploaded KakaoTalk exports.",
        ),
        data_recycling.to_deployment(
            name="nightly",
            schedules=[Cron(settings.recycle_cron, timezone=settings.recycle_timezone)],
            concurrency_limit=ConcurrencyLimitConfig(
                limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
            ),
            tags=["rememberme", "recycling"],
            version=CODE_VERSION,
            description="Incremental ingest of platform chat and voice; rebuild changed personas.",
        ),
        train_base.to_deployment(
            name="weekly",
            schedules=[Cron("0 4 * * 0", timezone=settings.recycle_timezone)],
            concurrency_limit=ConcurrencyLimitConfig(
                limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
            ),
            tags=["rememberme", "training"],
            version=CODE_VERSION,
            description="Pretrain the shared base model that personas fine-tune from.",
        ),
        train_voice_base.to_deployment(
            name="weekly",
            schedules=[Cron("0 5 * * 0", timezone=settings.recycle_timezone)],
            concurrency_limit=ConcurrencyLimitConfig(
                limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
            ),
            tags=["rememberme", "training", "voice"],
            version=CODE_VERSION,
            description="Pretrain the multi-speaker voice base that users' voices adapt.",
        ),
        forget.to_deployment(
            name="on-request",
            tags=["rememberme", "forget"],
            version=CODE_VERSION,
            description="Remove a data subject from lake, index and registry (tombstoned).",
        ),
    ]


def serve_all(settings: Settings | None = None) -> None:
    """Register the deployments with the API and execute their runs until interrupted."""
    serve(*deployments(settings or Settings()))
