"""ONNX exports are safe under the task runner's threads: they run in one exporter process."""

from __future__ import annotations

import os
import signal
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from torch import nn

from models.export import check_parity, export_onnx
from models.exporter import ExportError, ExportJob, export_isolated, exporter
from models.gpt import GPT, GPTConfig
from models.voice import AcousticModel, VoiceConfig, export_voice_onnx, voice_parity


def _gpt(seed: int) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=300, block_size=32, n_layer=1, n_head=2, d_model=32)).eval()


@pytest.mark.slow
def test_text_and_voice_exports_on_many_threads_at_once_all_succeed() -> None:
    """What recycling does with several personas: the in-process exporter raced and failed here."""
    gpts = [_gpt(seed) for seed in range(4)]
    voices = [AcousticModel(VoiceConfig(channels=16), seed=seed).eval() for seed in range(2)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        text = [pool.submit(export_onnx, m) for m in gpts]
        voice = [pool.submit(export_voice_onnx, m) for m in voices]
        text_graphs = [f.result(timeout=600) for f in text]
        voice_graphs = [f.result(timeout=600) for f in voice]
    for model, graph in zip(gpts, text_graphs, strict=True):
        assert check_parity(model, graph, shapes=[(1, 3), (2, 32)]).passed  # each its own model
    for voice_model, graphs in zip(voices, voice_graphs, strict=True):
        assert voice_parity(voice_model, graphs) <= 1e-4
    assert exporter().pid is not None and exporter().pid != os.getpid()


@pytest.mark.slow
def test_the_exporter_process_is_reused_and_restarted_after_it_dies() -> None:
    export_onnx(_gpt(1))
    first = exporter().pid
    export_onnx(_gpt(2))
    assert exporter().pid == first  # torch's import is paid once
    assert first is not None
    os.kill(first, signal.SIGKILL)
    graph = export_onnx(_gpt(3))  # a dead exporter is noticed and replaced
    assert check_parity(_gpt(3), graph, shapes=[(1, 4)]).passed
    assert exporter().pid not in (None, first)


class _DataDependent(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # control flow on values: the exporter refuses it
            return x * 2
        return x


def test_a_model_the_exporter_refuses_is_one_line_with_the_exporters_error_type() -> None:
    job = ExportJob(_DataDependent(), (torch.ones(2, 3),), ["x"], ["y"], {"x": {0: ("b", 1, 8)}})
    with pytest.raises(ExportError) as info:
        export_isolated(job)
    assert info.value.kind != "ExporterDied" and "\n" not in str(info.value)
    assert exporter().pid is not None  # the exporter survives a refused model
