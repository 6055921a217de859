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

from flows.base_models import train_base, train_voice_base
from flows.forget import forget
from flows.recycle import data_recycling
from flows.restore import instant_restore
from infra.settings import Settings
from infra.version import CODE_VERSION


def _scheduled(flow: Any, name: str, cron: str, timezone: str, tags: list[str], description: str) -> Any:
    """A scheduled deployment that never stacks runs: a late one is cancelled, the next catches up."""
    return flow.to_deployment(
        name=name,
        schedules=[Cron(cron, timezone=timezone)],
        concurrency_limit=ConcurrencyLimitConfig(
            limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
        ),
        tags=["rememberme", *tags],
        version=CODE_VERSION,
        description=description,
    )


def deployments(settings: Settings) -> list[Any]:
    """The deployments of the pipeline."""
    zone = settings.recycle_timezone
    return [
        instant_restore.to_deployment(
            name="on-demand",
            tags=["rememberme", "restore"],
            version=CODE_VERSION,
            description="Restore a persona from uploaded KakaoTalk exports.",
        ),
        _scheduled(data_recycling, "nightly", settings.recycle_cron, zone, ["recycling"],
                   "Incremental ingest of platform chat and voice; rebuild changed personas."),
        _scheduled(train_base, "weekly", "0 4 * * 0", zone, ["training"],
                   "Pretrain the shared base model that personas fine-tune from."),
        _scheduled(train_voice_base, "weekly", "0 5 * * 0", zone, ["training", "voice"],
                   "Pretrain the multi-speaker voice base that users' voices adapt."),
        forget.to_deployment(
            name="on-request",
            tags=["rememberme", "forget"],
            version=CODE_VERSION,
            description="Remove a data subject from lake, index and registry (tombstoned).",
        ),
    ]  # fmt: skip


def serve_all(settings: Settings | None = None) -> None:
    """Register the deployments with the API and execute their runs until interrupted."""
    serve(*deployments(settings or Settings()))
