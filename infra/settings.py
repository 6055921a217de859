"""One typed settings object for the whole pipeline (env prefix `REMEMBERME_`, `.env` supported)."""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Pipeline configuration. Every field can be set as `REMEMBERME_<FIELD>` or in `.env`."""

    model_config = SettingsConfigDict(env_prefix="REMEMBERME_", env_file=".env", extra="ignore")

    lake_url: str = Field(
        default="file://./data",
        description="Root of the data lake: file:///abs/path, file://./relative, or gs://bucket/prefix.",
    )
    kakao_timezone: str = Field(
        default="Asia/Seoul", description="Zone in which KakaoTalk's local (zone-less) times are read."
    )
    max_archive_bytes: int = Field(
        default=8 * 1024**3, description="Largest total uncompressed size accepted from a zip export."
    )
    max_archive_ratio: int = Field(
        default=200, description="Largest compression ratio accepted for one zip member (zip-bomb guard)."
    )
    max_archive_members: int = Field(default=100_000, description="Most members accepted in one zip export.")
    parse_chunk_bytes: int = Field(
        default=4 * 1024 * 1024,
        description="Bytes parsed per chunk: bounds memory; 4 MiB measured fastest (cache-friendly).",
    )

    es_url: str | None = Field(
        default=None,
        description="Elasticsearch URL; unset: a local Elasticsearch-API server is started on demand.",
    )
    local_es_port: int | None = Field(
        default=None,
        description="Port of the local Elasticsearch-API stand-in; unset: 9200 when free, else a free "
        "port, remembered per state folder (a server left running elsewhere is never used).",
    )
    local_gcs_port: int = Field(default=4443, description="Port of `services up --gcs` (GCS emulator).")
    state_dir: str = Field(default=".state", description="Folder for local service data (not the lake).")
    index_vectors: bool = Field(
        default=False,
        description="Flows also embed every message (semantic message search; ~200 messages/s on 2 "
        "CPU cores). The persona's context->reply pairs, which chat retrieves from, are always embedded.",
    )

    embedder_model: str | None = Field(
        default=None,
        description="Local Hugging Face sentence-embedding directory (multilingual-e5-base/large, bge-m3, "
        "...) used for every vector instead of the bundled multilingual-e5-small. Changing it re-embeds the "
        "search indices after `rememberme index --switch-embedder`; personas answer from memory again once "
        "retrained (their thresholds are in the old embedder's cosines).",
    )
    embedder_pooling: str | None = Field(
        default=None,
        description="cls, mean or lasttoken for REMEMBERME_EMBEDDER_MODEL; unset: its sentence-transformers "
        "1_Pooling/config.json, else mean.",
    )
    embedder_query_prompt: str | None = Field(
        default=None,
        description="Text put before every query for REMEMBERME_EMBEDDER_MODEL (e5: 'query: '); unset: "
        "its config_sentence_transformers.json prompts, else none.",
    )
    embedder_passage_prompt: str | None = Field(
        default=None, description="Text put before every document (e5: 'passage: '); unset as above."
    )

    train_max_steps: int = Field(default=300, ge=1, description="Optimiser steps of a persona fine-tune.")
    train_device: str = Field(default="auto", description="auto (cuda when present), cpu or cuda.")
    train_lora_rank: int | None = Field(
        default=None,
        ge=0,
        description="Persona fine-tune through LoRA adapters of this rank (0: full fine-tune). Unset: "
        "rank 8 on an imported pretrained base, full fine-tune of our own small base.",
    )
    asr_model: str | None = Field(
        default=None,
        description="Local Hugging Face speech-recognition directory (Whisper, wav2vec2-CTC, ...) that "
        "transcribes utterances without words, e.g. KakaoTalk voice messages. Unset: none are transcribed.",
    )
    speaker_encoder: str | None = Field(
        default=None,
        description="Speaker-encoder weights (Resemblyzer's pretrained.pt format) that measure how much a "
        "voice sounds like its persona. Unset: the installed resemblyzer wheel's.",
    )
    voice_gate_similarity_tolerance: float = Field(
        default=0.02,
        ge=0.0,
        description="Voice gate: how far below production a candidate's speaker similarity to the persona "
        "(held-out sentences, cosine) may be.",
    )
    voice_gate_min_identified: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Voice gate: the least share of held-out sentences a voice must read nearer the persona "
        "than any other voice known (the owner's other personas, reference voices) to be served at all.",
    )
    lock_lease_s: float = Field(
        default=60.0,
        gt=0.0,
        description="How long a persona lock outlives a holder that died (a live holder renews it every "
        "third of it); a waiting run takes the lock over then.",
    )
    gate_selection_tolerance: float = Field(
        default=0.05,
        ge=0.0,
        description="Promotion gate: how far below production a candidate's response selection (recall@1, "
        "MRR; absolute) may be.",
    )
    gate_contrastive_tolerance: float = Field(
        default=0.01,
        ge=0.0,
        description="Promotion gate: how far below production the contrastive score of what chat says may be "
        "(similarity to the real reply minus that to other contexts' real replies; absolute).",
    )
    gate_bland_tolerance: float = Field(
        default=0.05,
        ge=0.0,
        description="Promotion gate: how far above production the share of bland answers (lines the persona "
        "says to anything) may be (absolute).",
    )
    chat_probe: str = Field(
        default="잘 지냈어?", description="The message instant restore sends to the new model (its artifact)."
    )

    dask_address: str | None = Field(
        default=None,
        description="Dask scheduler (tcp://host:8786) for recycling fan-out; unset: local threads.",
    )
    recycle_cron: str = Field(default="0 3 * * *", description="Schedule of the data-recycling deployment.")
    recycle_timezone: str = Field(default="Asia/Seoul", description="Zone of the recycling schedule.")
    recycle_lookback_days: int = Field(
        default=3, ge=0, description="Landing days kept open for late files before they are closed."
    )
    local_prefect_port: int = Field(default=4200, description="Port of `rememberme server` (Prefect UI/API).")

    @field_validator("kakao_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Asia/Seoul)") from None
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
