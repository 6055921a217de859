"""A voice base imported from a local folder: checked (config, weights, parity), published, refused clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from infra.registry import Registry
from infra.storage import open_storage
from models.voice import AcousticModel, VoiceConfig
from parsers.errors import InputError
from tasks.voice.voice_model import VOICE_BASE, import_voice_base

pytestmark = pytest.mark.integration


def _folder(path: Path, config: VoiceConfig, weights: str = "weights.pt") -> Path:
    path.mkdir()
    model = AcousticModel(config, seed=3)
    (path / "config.json").write_text(json.dumps(config.to_dict()))
    if weights == "weights.pt":
        torch.save(model.state_dict(), path / weights)
    else:
        save_file(model.state_dict(), path / weights)
    return path


@pytest.mark.parametrize("weights", ["weights.pt", "model.safetensors"])
def test_a_voice_base_folder_is_imported_with_its_own_shape(tmp_path: Path, weights: str) -> None:
    storage = open_storage(f"file://{tmp_path}/lake")
    folder = _folder(tmp_path / "base", VoiceConfig(channels=64, n_speakers=4), weights)
    manifest = import_voice_base(storage, str(folder))
    assert manifest["kind"] == "base" and manifest["corpus"]["imported_from"] == str(folder.resolve())
    assert manifest["parity"]["max_abs_diff"] <= 1e-4
    stored = Registry(storage).load(*VOICE_BASE, "base", "latest")
    assert json.loads(stored.files["config.json"])["channels"] == 64
    original = torch.load(folder / "weights.pt") if weights == "weights.pt" else None
    if original is not None:
        import io

        again = torch.load(io.BytesIO(stored.files["weights.pt"]), weights_only=True)
        assert all(torch.equal(again[k], v) for k, v in original.items())


def test_bad_voice_base_folders_are_refused_in_one_line(tmp_path: Path) -> None:
    storage = open_storage(f"file://{tmp_path}/lake")
    (tmp_path / "empty").mkdir()
    cases = {
        "empty": r"no config\.json",
        "unknown": r"unknown field 'layers'",
        "symbols": r"n_symbols 10, but the jamo inventory has",
        "misfit": r"weights do not fit config\.json: size mismatch",
        "noweights": r"no weights\.pt or model\.safetensors",
        "garbage": r"weights\.pt: not a torch state dict",
    }
    folder = _folder(tmp_path / "unknown", VoiceConfig())
    (folder / "config.json").write_text(json.dumps({**VoiceConfig().to_dict(), "layers": 3}))
    folder = _folder(tmp_path / "symbols", VoiceConfig())
    (folder / "config.json").write_text(json.dumps({**VoiceConfig().to_dict(), "n_symbols": 10}))
    folder = _folder(tmp_path / "misfit", VoiceConfig(channels=64))
    (folder / "config.json").write_text(json.dumps(VoiceConfig().to_dict()))
    folder = _folder(tmp_path / "noweights", VoiceConfig())
    (folder / "weights.pt").unlink()
    folder = _folder(tmp_path / "garbage", VoiceConfig())
    (folder / "weights.pt").write_bytes(b"not a checkpoint")
    for name, pattern in cases.items():
        with pytest.raises(InputError, match=pattern) as info:
            import_voice_base(storage, str(tmp_path / name))
        assert "\n" not in str(info.value), name
    assert not storage.list("models/")


@pytest.mark.usefixtures("prefect_api")
def test_train_voice_base_flow_imports_a_folder(tmp_path: Path) -> None:
    from flows.base_models import train_voice_base

    folder = _folder(tmp_path / "base", VoiceConfig(channels=32))
    state = train_voice_base(f"file://{tmp_path}/lake", from_dir=str(folder), return_state=True)
    assert state.is_completed() and state.result()["version"] == 1


def test_cli_refuses_a_folder_without_config_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from flows.cli import main

    assert main(["train-voice-base", "--from", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("rememberme: error:") and "no config.json" in err and "\n" not in err
