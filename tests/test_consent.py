"""Consent decides what trains the shared bases; a persona's voice carries only its own speaker."""

from __future__ import annotations

import io
from datetime import date, timedelta
from pathlib import Path

import onnx
import torch

from infra.settings import Settings
from infra.storage import open_storage
from models.align import uniform_index
from models.data import Turn
from models.voice import AcousticModel, VoiceConfig, export_voice_onnx, single_speaker
from parsers.platform import synth
from tasks.datasets.clean import subject_key
from tasks.ingest import recycling as recycle
from tasks.ingest.platform import stage_chat_file, write_landing
from tasks.ingest.uploads import ingest_export
from tasks.training.base_model import base_corpus
from tasks.trust.consent import base_consents, base_opt_in, set_base_opt_in
from tests.scan_support import export_with_planted_values

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "kakao_android_ko.txt"


def _texts(corpus: list[list[Turn]]) -> str:
    return "\n".join(turn.text for conversation in corpus for turn in conversation)


def test_uploads_teach_the_base_only_after_their_owner_opts_in_and_only_redacted(tmp_path: Path) -> None:
    storage = open_storage(f"file://{tmp_path}/lake")
    planted = export_with_planted_values(tmp_path / "x.txt")
    ingest_export(tmp_path / "x.txt", "owner-x", storage, Settings())
    ingest_export(SAMPLE, "owner-y", storage, Settings())
    assert base_corpus(storage)[0] == []  # nobody opted in: nothing
    assert not base_opt_in(storage, "owner-x")

    set_base_opt_in(storage, "owner-y", True)
    corpus, lineage = base_corpus(storage)
    assert lineage["owners"] == ["owner-y"] and lineage["messages"] > 2500

    set_base_opt_in(storage, "owner-x", True)
    corpus, lineage = base_corpus(storage)
    assert lineage["owners"] == ["owner-x", "owner-y"]
    text = _texts(corpus)
    assert "<phone_1>" in text and "<rrn_1>" in text  # x's words are there, redacted
    assert not [value for value in planted if value in text]

    set_base_opt_in(storage, "owner-x", False)  # a revoked opt-in: the next base has none of x
    assert base_corpus(storage)[1]["owners"] == ["owner-y"]


def test_platform_subjects_teach_the_base_only_with_a_base_training_consent(tmp_path: Path) -> None:
    storage = open_storage(f"file://{tmp_path}/lake")
    rooms = synth.world(4, seed=3)
    start = date(2024, 3, 1)
    write_landing(storage, synth.history(rooms, start, days=2, events_per_day=200, active_share=1.0, voice=0))
    plan = recycle.plan_pass(storage, start + timedelta(days=1))
    recycle.route_pass(storage, plan, [stage_chat_file(storage, key) for key in plan.chat_files])
    consenting = [c for c in plan.consents if c.base_training]
    assert 0 < len(consenting) < len(plan.consents)  # the generator makes both kinds

    corpus, lineage = base_corpus(storage)
    assert lineage["owners"] == []  # platform rows are not "uploads"
    assert sorted(lineage["subjects"]) == sorted({subject_key(c.owner_id, c.persona) for c in consenting})
    allowed = base_consents(storage)
    spoken = {c.persona for c in consenting}
    for c in plan.consents:
        assert allowed.allows_subject(c.owner_id, c.persona) == c.base_training
    text = _texts(corpus)
    assert corpus and lineage["messages"] == len(text.splitlines())
    others = [c.persona for c in plan.consents if not c.base_training and c.persona not in spoken]
    assert all(f"{name} [" not in text for name in others)  # no one else's lines


def test_a_personas_voice_carries_only_its_own_speaker_row() -> None:
    base = AcousticModel(VoiceConfig(channels=16, n_speakers=8), seed=1).eval()
    mine = single_speaker(base, 3)
    ids = torch.randint(2, 40, (1, 9))
    index = torch.from_numpy(uniform_index(9, 30))
    with torch.no_grad():
        same = mine(ids, index, torch.tensor([0]))
        want = base(ids, index, torch.tensor([3]))
    assert torch.allclose(same, want, atol=1e-6) and mine.config.n_speakers == 1
    graph, _ = export_voice_onnx(mine)
    model = onnx.load_model_from_string(graph)
    shapes = [tuple(t.dims) for t in model.graph.initializer]
    assert (1, 16) in shapes and (8, 16) not in shapes  # the other seven rows never leave
    assert io.BytesIO(graph).getbuffer().nbytes > 0


def test_a_transcript_with_personal_data_is_withheld_not_kept() -> None:
    from tasks.trust.zones import speakable

    assert speakable("밥은 먹었니 따뜻하게 입고 다녀") == "밥은 먹었니 따뜻하게 입고 다녀"
    for sentence in (
        "내 번호 010-2345-6789 저장해",
        "메일은 mom@example.com 이야",
        "국민은행 123456-01-234567",
    ):
        assert speakable(sentence) is None  # the audio says it too: the utterance must not train
    assert speakable(None) is None and speakable("") == ""
