"""ONNX export (torch.onnx dynamo exporter) with dynamic batch and sequence axes, and its parity check.

Both work in memory (bytes in, bytes out): the registry decides where the model is stored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from models.exporter import DynamicAxes, ExportJob, export_isolated
from models.lm import LanguageModel


@dataclass(frozen=True)
class ParityReport:
    """Largest absolute difference of logits over the checked shapes."""

    max_abs_diff: float
    shapes: list[tuple[int, int]]
    tolerance: float

    @property
    def passed(self) -> bool:
        """Within tolerance on every shape."""
        return self.max_abs_diff <= self.tolerance


def export_onnx(model: LanguageModel) -> bytes:
    """The model as ONNX bytes; input `input_ids` (batch, seq) int64, output `logits`.

    Exported in the exporter process (`models.exporter`), so any number of threads may call this.
    """
    model = model.to("cpu").eval()
    # Batch 2, not 1: the exporter specialises a dimension whose example size is 1 (seen with
    # transformers' mask code), which would fix the batch axis.
    example = torch.zeros((2, 8), dtype=torch.long)
    axes: DynamicAxes = {"idx": {0: ("batch", 1, 64), 1: ("seq", 2, model.config.block_size)}}
    return export_isolated(ExportJob(model, (example,), ["input_ids"], ["logits"], axes))


def check_parity(
    model: LanguageModel,
    onnx_bytes: bytes,
    shapes: list[tuple[int, int]] | None = None,
    tolerance: float = 1e-4,
    seed: int = 0,
) -> ParityReport:
    """Run torch and onnxruntime on random ids of several shapes; the worst logit difference."""
    import onnxruntime as ort

    shapes = shapes or [(1, 2), (1, 17), (3, 33), (2, model.config.block_size)]
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(seed)
    worst = 0.0
    model = model.to("cpu").eval()
    for batch, seq in shapes:
        ids = torch.randint(model.config.vocab_size, (batch, seq), generator=generator)
        with torch.no_grad():
            expected = model(ids).numpy()
        (got,) = session.run(["logits"], {"input_ids": ids.numpy()})
        worst = max(worst, float(np.max(np.abs(got - expected))))
    return ParityReport(worst, shapes, tolerance)
