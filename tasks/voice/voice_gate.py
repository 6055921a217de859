"""The voice gate: a voice version serves only if it sounds like the person, and no less than production.

Both the candidate and production read the candidate's held-out sentences (recordings never
trained on) and are scored by `tasks/voice/similarity.py`. Refused: a candidate whose sentences
are nearer another voice than the persona's in too many cases (it sounds like nobody: too little
or too noisy data), or whose speaker similarity is below production's by more than the tolerance.
"""

from __future__ import annotations

import io
import re
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from infra.registry import Registry, RegistryError
from infra.settings import Settings
from infra.storage import Storage
from infra.versions import read_verified
from schemas.names import slug
from tasks.voice.similarity import (
    Utterance,
    VoiceScore,
    centroid,
    encoder_weights,
    load_encoder,
    reference_voices,
    score_voice,
    wav_samples,
)

#: Recordings that make a voice's centroid (more add little and cost encoder time).
CENTROID_UTTERANCES = 24


def judge_voice(
    storage: Storage,
    owner_id: str,
    persona: str,
    candidate: dict[str, bytes],
    held_out: list[Utterance],
    training: list[Utterance],
    settings: Settings,
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(the candidate's similarity scores, or None without an encoder; the promotion verdict)."""
    from tasks.voice.voice_model import synthesize

    weights = encoder_weights(settings.speaker_encoder)
    if weights is None:
        reason = "no speaker encoder installed (REMEMBERME_SPEAKER_ENCODER): similarity not measured"
        return None, {"promote": True, "reason": reason}
    encoder = load_encoder(str(weights))
    mine = centroid(encoder, training[:CENTROID_UTTERANCES] or held_out)
    others = {**reference_voices(), **other_voices(storage, owner_id, persona, encoder)}

    def score(files: dict[str, bytes]) -> VoiceScore:
        spoken = [synthesize(files, u.text) for u in held_out]
        return score_voice(encoder, [s for s, _ in spoken], spoken[0][1], held_out, mine, others)

    found = score(candidate)
    scores: dict[str, Any] = {"candidate": found.to_dict()}
    if found.identified < settings.voice_gate_min_identified:
        reason = (
            f"sounds like nobody yet: {found.identified:.0%} of {found.utterances} held-out sentences were "
            f"nearer {persona}'s own voice than to other voices (at least "
            f"{settings.voice_gate_min_identified:.0%} needed); more or cleaner recordings of them will help"
        )
        return scores, {"promote": False, "reason": reason}
    try:
        production = Registry(storage).load(owner_id, slug(persona), "voice", "production")
    except RegistryError:
        return scores, {"promote": True, "reason": "first voice that sounds like them"}
    served = score(production.files)
    scores["production"] = {"version": production.manifest["version"], **served.to_dict()}
    floor = served.similarity - settings.voice_gate_similarity_tolerance
    if found.similarity < floor:
        reason = (
            f"sounds less like {persona} than production v{production.manifest['version']} "
            f"(speaker similarity {found.similarity:.3f} vs {served.similarity:.3f}, tolerance "
            f"{settings.voice_gate_similarity_tolerance})"
        )
        return scores, {"promote": False, "reason": reason}
    reason = f"speaker similarity {found.similarity:.3f} vs production's {served.similarity:.3f}"
    return scores, {"promote": True, "reason": reason}


def other_voices(storage: Storage, owner_id: str, persona: str, encoder: Any) -> dict[str, np.ndarray]:
    """Centroids of the owner's other personas' voices (their newest voice datasets)."""
    prefix = f"voice/owner={owner_id}/datasets/"
    newest: dict[str, int] = {}
    for key in storage.list(prefix):
        match = re.match(rf"^{re.escape(prefix)}([^/]+)/v(\d+)/manifest\.json$", key)
        if match and match.group(1) != slug(persona):
            newest[match.group(1)] = max(newest.get(match.group(1), 0), int(match.group(2)))
    out = {}
    for other, version in sorted(newest.items()):
        recordings = dataset_recordings(storage, owner_id, other, version, CENTROID_UTTERANCES)
        if recordings:
            out[f"{owner_id}/{other}"] = centroid(encoder, recordings)
    return out


def dataset_recordings(
    storage: Storage, owner_id: str, persona_id: str, version: int, limit: int | None = None
) -> list[Utterance]:
    """The transcribed recordings of a voice dataset version (its own rate and text)."""
    prefix = f"voice/owner={owner_id}/datasets/{persona_id}/v{version}"
    rows = pq.read_table(io.BytesIO(read_verified(storage, f"{prefix}/segments.parquet"))).to_pylist()
    out = []
    for row in rows:
        if not row["transcript"]:
            continue
        samples, rate = wav_samples(storage.read_bytes(storage.key(row["audio_uri"])))
        out.append(Utterance(row["transcript"], samples, rate))
        if limit is not None and len(out) >= limit:
            break
    return out


def card_line(scores: dict[str, Any] | None) -> str:
    """One sentence of a voice card: how much it sounds like the person, measured."""
    if scores is None:
        return "How much it sounds like the person was not measured (no speaker encoder installed)."
    s = scores["candidate"]
    return (
        f"On {s['utterances']} held-out sentences it sounds like them at speaker similarity "
        f"{s['similarity']:.2f} (their own recordings: {s['real_similarity']:.2f}); "
        f"{s['identified']:.0%} were nearer their voice than to any of {s['competitors']} other voices; "
        f"length {s['length_ratio']:.2f} of the real; pitch contour correlation {s['f0_correlation']:.2f}."
    )


def finish_promotion(storage: Storage, owner_id: str, persona: str) -> int | None:
    """Move `production` to the newest voice version the gate passed, if that move was lost.

    `train_user_voice` publishes a version, then moves production: a process killed between the
    two left a served-worthy voice unserved, and a re-run finds its dataset trained and trains
    nothing. A version production has pointed to before is left alone (a rollback moved it away).
    """
    registry = Registry(storage)
    persona_id = slug(persona)
    latest = registry.aliases(owner_id, persona_id, "voice").get("latest")
    if latest is None:
        return None
    verdict = registry.manifest(owner_id, persona_id, "voice", latest).get("promotion") or {}
    if not verdict.get("promote"):
        return None
    moves = registry.history(owner_id, persona_id, "voice")
    served = {m["version"] for m in moves if m["alias"] == "production"}
    if latest in served:
        return None
    registry.set_alias(owner_id, persona_id, "voice", "production", latest)
    return int(latest)
