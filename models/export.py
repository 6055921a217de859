"""ONNX export (torch.onnx dynamo exporter) with dynamic batch and sequence axes, and its parity check.

Both work in memory (bytes in, bytes out): the registry decides where the model is stored.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from models.errors import ParityError
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
    """The model as ONNX bytes; input `input_ids` (batch, seq) int64, output `logits`."""
    model = model.to("cpu").eval()
    # Batch 2, not 1: the exporter specialises a dimension whose example size is 1 (seen with
    # transformers' mask code), which would fix the batch axis.
    example = torch.zeros((2, 8), dtype=torch.long)
    batch = torch.export.Dim("batch", min=1, max=64)
    seq = torch.export.Dim("seq", min=2, max=model.config.block_size)
    # The exporter logs a warning per missing torchvision op; nothing here uses torchvision.
    onnx_logger = logging.getLogger("torch.onnx")
    level = onnx_logger.level
    onnx_logger.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            input_names=["input_ids"],
            output_names=["logits"],
            dynamic_shapes={"idx": {0: batch, 1: seq}},
            verbose=False,
        )
    onnx_logger.setLevel(level)
    if program is None:
        raise ParityError("torch.onnx.export returned no program")
    data: bytes = program.model_proto.SerializeToString()
    return data


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
