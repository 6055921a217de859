"""Per-user voice checkpoints: train on a voice dataset's transcribed utterances, export, publish, speak.

A user's model starts from the newest voice base when there is one (its weights, its speakers'
mean embedding as the user's starting voice) and adapts every weight to the user's utterances;
without a base it trains from scratch. Only utterances with a transcript can teach text-to-mel.
Published as `models/{owner}/{persona}/voice/v{n}/` with the same manifest fields as text models.
"""

from __future__ import annotations

import io
import json
import re
import wave
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow.parquet as pq
import torch
from pydub import AudioSegment

from infra.registry import Registry, RegistryError
from infra.settings import Settings
from infra.storage import Storage
from infra.versions import read_verified
from models.align import index_from_durations, uniform_index
from models.errors import ParityError
from models.units import Selector, WaveInventory, build_wave_inventory, model_fallback
from models.voice import (
    SYMBOLS,
    AcousticModel,
    MelConfig,
    VoiceConfig,
    aligned_index,
    calibrate_pace,
    export_voice_onnx,
    frames_from_log_durations,
    griffin_lim,
    jamo_ids,
    log_mel,
    single_speaker,
    train_voice,
    voice_parity,
)
from parsers.errors import InputError
from schemas.names import slug
from tasks.datasets.clean import persona_key
from tasks.voice.similarity import Utterance
from tasks.voice.voice_gate import card_line, judge_voice

if TYPE_CHECKING:
    from tasks.trust.consent import BaseConsents

VOICE_BASE = ("platform", "voice-base")
MIN_TRANSCRIBED = 2  # utterances with words a user's voice model needs (one is held out)


def voice_items(storage: Storage, owner_id: str, persona: str, version: int, config: MelConfig) -> list[Any]:
    """(jamo ids, log-mel) of every transcribed utterance in a voice dataset version."""
    return [_item(u, config) for u in voice_recordings(storage, owner_id, persona, version, config)]


def voice_recordings(
    storage: Storage, owner_id: str, persona: str, version: int, config: MelConfig
) -> list[Utterance]:
    """Every transcribed utterance of a voice dataset version, mono at the model's sample rate."""
    prefix = f"voice/owner={owner_id}/datasets/{slug(persona)}/v{version}"
    if not storage.exists(f"{prefix}/manifest.json"):
        raise InputError(prefix, "no such voice dataset version (build it first)")
    rows = pq.read_table(io.BytesIO(read_verified(storage, f"{prefix}/segments.parquet"))).to_pylist()
    out = []
    for row in rows:
        if not row["transcript"]:
            continue
        audio = AudioSegment.from_wav(io.BytesIO(storage.read_bytes(storage.key(row["audio_uri"]))))
        audio = audio.set_channels(1).set_frame_rate(config.sample_rate).set_sample_width(2)
        samples = np.frombuffer(audio.raw_data, dtype=np.int16).astype(np.float32) / 32768
        out.append(Utterance(row["transcript"], samples, config.sample_rate))
    return out


def _item(utterance: Utterance, config: MelConfig) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor(jamo_ids(utterance.text)), torch.from_numpy(log_mel(utterance.samples, config))


def train_user_voice(
    storage: Storage, owner_id: str, persona: str, dataset_version: int, steps: int = 300, seed: int = 13
) -> dict[str, Any]:
    """Adapt (or train) an acoustic model to one user's voice and publish it (parity-checked)."""
    mel_config = MelConfig()
    recordings = voice_recordings(storage, owner_id, persona, dataset_version, mel_config)
    items = [_item(u, mel_config) for u in recordings]
    if len(items) < MIN_TRANSCRIBED:
        reason = f"{len(items)} transcribed utterances; at least {MIN_TRANSCRIBED} needed"
        raise InputError(f"voice of {owner_id}/{persona}", reason)
    registry = Registry(storage)
    model = AcousticModel(VoiceConfig(), seed=seed)
    base_version = None
    try:
        base = registry.load(*VOICE_BASE, "base", "latest")
        model = AcousticModel(VoiceConfig(**json.loads(base.files["config.json"])), seed=seed)
        model.load_state_dict(torch.load(io.BytesIO(base.files["weights.pt"]), weights_only=True))
        with torch.no_grad():
            model.speaker.weight[0] = model.speaker.weight.mean(0)
        base_version = base.version
    except RegistryError:
        pass
    n_val = max(1, len(items) // 10)
    result = train_voice(model, items[n_val:], items[:n_val], speaker=0, steps=steps, seed=seed)
    model = single_speaker(model, 0)  # nothing of the base's other speakers leaves with this voice
    graphs, diff = _export_checked(model)
    # The person's own sounds, aligned by the trained aligner: speak selects from them (models/units.py).
    training = recordings[n_val:]
    spans = [aligned_index(model, ids, mel) for ids, mel in items[n_val:]]
    units = build_wave_inventory(
        [(ids.numpy(), u.samples, x) for (ids, _), u, x in zip(items[n_val:], training, spans, strict=True)],
        mel_config.hop,
    )
    graphs["units.npz"] = units.to_bytes()
    frames = sum(len(mel) for _, mel in items)
    tokens = sum(len(ids) for ids, _ in items)
    weights = io.BytesIO()
    torch.save(model.state_dict(), weights)
    config = {
        "voice": model.config.to_dict(),
        "mel": mel_config.__dict__,
        "frames_per_jamo": frames / tokens,
        "pace": calibrate_pace(model, items[n_val:] or items),
        "speaker": 0,
    }
    dataset = json.loads(
        storage.read_bytes(
            f"voice/owner={owner_id}/datasets/{slug(persona)}/v{dataset_version}/manifest.json"
        )
    )
    minutes = frames * mel_config.hop / mel_config.sample_rate / 60
    asr = dataset.get("transcripts_by_source", {}).get("asr", 0)
    files = {**graphs, "weights.pt": weights.getvalue(), "config.json": json.dumps(config).encode()}
    similarity, promotion = judge_voice(
        storage, owner_id, persona, files, recordings[:n_val], recordings[n_val:], Settings()
    )
    published = registry.publish(
        owner_id,
        slug(persona),
        "voice",
        files,
        {
            "base_version": base_version,
            "dataset": {"version": dataset_version, "content_hash": dataset["content_hash"]},
            "hyper_parameters": {"model": model.config.to_dict(), "steps": steps, "seed": seed},
            "metrics": {
                "val_l1_log_mel": result.best_val_l1,
                "val_length_error": result.val_length_error,
                "utterances": len(items),
                "asr_utterances": asr,
                "minutes": minutes,
            },
            "parity": {"max_abs_diff": diff},
            "curve": result.history,
            "similarity": similarity,
            "promotion": promotion,
            "model_card": (
                f"Trained on {minutes:.1f} minutes of transcribed speech, {len(items)} utterances kept "
                f"({asr} transcribed by speech recognition, which may have misheard). "
                f"{card_line(similarity)} Sentences are joined from their own recorded sounds; a sound "
                "they never recorded comes from a small acoustic model through a robotic Griffin-Lim "
                "vocoder, and more recordings cover more of what they will be asked to say. "
                + ("Served." if promotion["promote"] else f"Not served: {promotion['reason']}.")
            ),
        },
    )
    if promotion["promote"]:
        registry.set_alias(owner_id, slug(persona), "voice", "production", int(published["version"]))
    return published


def speak(
    storage: Storage, owner_id: str, persona: str, text: str, version: str | int | None = None
) -> bytes:
    """A WAV of `text` in the persona's published voice (onnxruntime + Griffin-Lim)."""
    checkpoint = Registry(storage).load(owner_id, slug(persona), "voice", version)
    samples, rate = synthesize(checkpoint.files, text)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((samples * 32767).astype(np.int16).tobytes())
    return buffer.getvalue()


def synthesize(files: dict[str, bytes], text: str) -> tuple[np.ndarray, int]:
    """Samples and rate of `text` read by a voice checkpoint's files.

    With a unit inventory (`units.npz`): the person's own recorded sounds, selected and joined
    (models/units.py), the acoustic model only for sounds they never recorded; without one (older
    checkpoints): the acoustic model's frames through Griffin-Lim.
    """
    import onnxruntime as ort

    config = json.loads(files["config.json"])
    mel_config = MelConfig(**config["mel"])
    jamo = jamo_ids(text)
    ids = np.asarray([jamo], dtype=np.int64)
    speaker = np.array([config["speaker"]], dtype=np.int64)
    providers = ["CPUExecutionProvider"]
    if "durations.onnx" in files:  # learned durations place the frames
        durations = ort.InferenceSession(files["durations.onnx"], providers=providers)
        (log_durations,) = durations.run(["log_durations"], {"ids": ids, "speaker": speaker})
        pace = float(config.get("pace", 1.0))
        frame_index = index_from_durations(frames_from_log_durations(log_durations[0], pace))
    else:  # a checkpoint from before duration prediction: the speaker's average rate
        frame_index = uniform_index(ids.shape[1], max(4, round(ids.shape[1] * config["frames_per_jamo"])))
    session = ort.InferenceSession(files["model.onnx"], providers=providers)
    (mel,) = session.run(["mel"], {"ids": ids, "frame_index": frame_index, "speaker": speaker})
    if "units.npz" not in files:
        return griffin_lim(mel[0], mel_config), mel_config.sample_rate
    inventory = WaveInventory.from_bytes(files["units.npz"])
    unheld = model_fallback(mel[0], frame_index[0], mel_config.hop, lambda m: griffin_lim(m, mel_config))
    return Selector(inventory).render(jamo, unheld), mel_config.sample_rate


def train_voice_base(storage: Storage, steps: int = 600, seed: int = 13) -> dict[str, Any]:
    """Pretrain the multi-speaker voice base on the newest voice datasets consent allows; publish it.

    A dataset teaches the base only if every recording in it may: uploaded ones (restore audio,
    KakaoTalk voice messages) when the owner opted in, platform ones when the subject's consent
    covers base training (tasks/trust/consent.py).
    """
    from tasks.trust.consent import base_consents

    allowed = base_consents(storage)
    mel_config = MelConfig()
    config = VoiceConfig()
    items: list[Any] = []
    speakers: list[int] = []
    names: list[str] = []
    used: list[dict[str, Any]] = []
    for key in storage.list("voice/"):
        match = re.search(r"^voice/owner=([^/]+)/datasets/([^/]+)/v(\d+)/manifest\.json$", key)
        if not match or len(names) >= config.n_speakers:
            continue
        owner, persona, version = match.group(1), match.group(2), int(match.group(3))
        newest = max(
            int(m.group(1))
            for k in storage.list(f"voice/owner={owner}/datasets/{persona}/")
            if (m := re.search(r"/v(\d+)/manifest\.json$", k))
        )
        if version != newest or not _may_teach_base(storage, allowed, owner, persona, version):
            continue
        mine = voice_items(storage, owner, persona, version, mel_config)
        if mine:
            items += mine
            speakers += [len(names)] * len(mine)
            names.append(f"{owner}/{persona}")
            used.append({"owner": owner, "subject": persona_key(owner, persona), "version": version})
    if len(items) < 4:
        raise InputError("voice base corpus", f"{len(items)} transcribed utterances; at least 4 needed")
    model = AcousticModel(config, seed=seed)
    order = list(range(len(items)))
    n_val = max(1, len(items) // 10)
    result = train_voice(
        model, [items[i] for i in order[n_val:]], [items[i] for i in order[:n_val]],
        [speakers[i] for i in order[n_val:]], steps=steps, seed=seed,
    )  # fmt: skip
    return _publish_base(
        storage,
        model,
        {
            "corpus": {"speakers": len(names), "utterances": len(items)},
            # Who taught it (forget retires a base whose lineage names its subject): opaque keys.
            "lineage": {
                "owners": [],
                "dataset_owners": sorted({u["owner"] for u in used}),
                "subjects": sorted({u["subject"] for u in used}),
                "datasets": used,
            },
            "metrics": {"val_l1_log_mel": result.best_val_l1, "val_length_error": result.val_length_error},
            "curve": result.history,
        },
    )


def _may_teach_base(
    storage: Storage, allowed: BaseConsents, owner: str, persona_slug: str, version: int
) -> bool:
    table = pq.read_table(
        io.BytesIO(
            read_verified(storage, f"voice/owner={owner}/datasets/{persona_slug}/v{version}/segments.parquet")
        ),
        columns=["recording_id"],
    )
    ids = set(table["recording_id"].to_pylist())
    uploaded = any(i.startswith(("upload-", "kakao-")) for i in ids)
    platform = any(not i.startswith(("upload-", "kakao-")) for i in ids)
    subject_ok = any(slug(name) == persona_slug for name in allowed.subjects.get(owner, set()))
    return (not uploaded or allowed.allows_upload(owner)) and (not platform or subject_ok)


def import_voice_base(storage: Storage, directory: str) -> dict[str, Any]:
    """Publish a voice base from a local directory as the newest base (users then adapt it).

    The directory holds `config.json` (the `VoiceConfig` fields) and the weights as `weights.pt`
    (a torch state dict) or `model.safetensors`: what this registry stores for a voice base, so a
    base pretrained elsewhere (a GPU cluster, a larger consented corpus) can be brought in by
    copying its version folder. Checked here: the config, that the weights fit it, ONNX parity.
    """
    path = Path(directory)
    if not (path / "config.json").is_file():
        raise InputError(directory, "no config.json (a voice base folder holds config.json and weights)")
    try:
        raw = json.loads((path / "config.json").read_text())
        unknown = sorted(set(raw) - {f.name for f in fields(VoiceConfig)})
        if unknown:
            raise InputError(f"{directory}/config.json", f"unknown field {unknown[0]!r}")
        config = VoiceConfig(**raw)
    except (json.JSONDecodeError, TypeError) as exc:
        raise InputError(f"{directory}/config.json", f"not a voice config: {exc}") from exc
    if config.n_symbols != len(SYMBOLS):
        raise InputError(
            f"{directory}/config.json",
            f"n_symbols {config.n_symbols}, but the jamo inventory has {len(SYMBOLS)}",
        )
    model = AcousticModel(config)
    try:
        model.load_state_dict(_read_weights(path))
    except RuntimeError as exc:
        first = next((line.strip() for line in str(exc).splitlines()[1:] if line.strip()), str(exc))
        raise InputError(directory, f"weights do not fit config.json: {first}") from exc
    return _publish_base(
        storage,
        model.eval(),
        {"corpus": {"imported_from": str(path.resolve())}, "metrics": {}, "curve": []},
    )


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    if (path / "weights.pt").is_file():
        try:
            state: dict[str, torch.Tensor] = torch.load(path / "weights.pt", weights_only=True)
        except Exception as exc:  # torch raises several types for a file that is not a state dict
            raise InputError(
                str(path / "weights.pt"), f"not a torch state dict ({type(exc).__name__})"
            ) from exc
        return state
    if (path / "model.safetensors").is_file():
        from safetensors.torch import load_file

        return load_file(path / "model.safetensors")
    raise InputError(str(path), "no weights.pt or model.safetensors")


def _export_checked(model: AcousticModel) -> tuple[dict[str, bytes], float]:
    """`model.onnx` + `durations.onnx`, parity-checked; a failure stops publication."""
    graphs = export_voice_onnx(model)
    diff = voice_parity(model, graphs)
    if diff > 1e-4:
        raise ParityError(f"voice ONNX parity failed: max abs diff {diff:.2e} > 1e-04; not published")
    return {"model.onnx": graphs[0], "durations.onnx": graphs[1]}, diff


def _publish_base(storage: Storage, model: AcousticModel, details: dict[str, Any]) -> dict[str, Any]:
    graphs, diff = _export_checked(model)
    weights = io.BytesIO()
    torch.save(model.state_dict(), weights)
    return Registry(storage).publish(
        *VOICE_BASE,
        "base",
        {
            **graphs,
            "weights.pt": weights.getvalue(),
            "config.json": json.dumps(model.config.to_dict()).encode(),
        },
        {"base_version": None, **details, "parity": {"max_abs_diff": diff}},
    )
