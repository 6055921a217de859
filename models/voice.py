"""A small text-to-mel acoustic model (Korean jamo in, log-mel frames out) and a Griffin-Lim vocoder.

Deliberately simple, so it trains on minutes of audio on a CPU and needs no downloaded weights:
- input: jamo ids (Hangul syllables decomposed arithmetically; other characters kept as is),
- alignment: uniform - every jamo gets the same share of the utterance's frames (the frame->jamo
  index is an input, so ONNX sees no data-dependent shapes); a speaker's frames-per-jamo rate is
  learned from their data and stored with the checkpoint,
- encoder: embedding + 1-D convolutions; a speaker embedding is added (the base has one row per
  training speaker; a user's checkpoint adapts a new row and the weights to their recordings),
- decoder: convolutions over frames -> 80 log-mel bins,
- vocoder: Griffin-Lim over the mel filterbank's pseudo-inverse (numpy; quality is robotic).
No I/O here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

_CHO = [chr(c) for c in range(0x1100, 0x1113)]
_JUNG = [chr(c) for c in range(0x1161, 0x1176)]
_JONG = [""] + [chr(c) for c in range(0x11A8, 0x11C3)]
_EXTRA = list(" .,!?~-'\"0123456789abcdefghijklmnopqrstuvwxyz")
SYMBOLS = ["<pad>", "<unk>", *_CHO, *_JUNG, *_JONG[1:], *_EXTRA]
_ID = {s: i for i, s in enumerate(SYMBOLS)}


def jamo_ids(text: str) -> list[int]:
    """Text -> jamo ids (syllables decomposed; unknown characters -> <unk>)."""
    out: list[int] = []
    for ch in text.lower():
        code = ord(ch) - 0xAC00
        if 0 <= code < 11172:
            cho, rest = divmod(code, 588)
            jung, jong = divmod(rest, 28)
            out += [_ID[_CHO[cho]], _ID[_JUNG[jung]]]
            if jong:
                out.append(_ID[_JONG[jong]])
        else:
            out.append(_ID.get(ch, 1))
    return out or [1]


@dataclass(frozen=True)
class MelConfig:
    """Feature extraction; stored with every voice checkpoint."""

    sample_rate: int = 22_050
    n_fft: int = 1024
    hop: int = 256
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float = 8000.0

    def filterbank(self) -> np.ndarray:
        """(n_mels, n_fft // 2 + 1) triangular mel filters (HTK mel scale)."""

        def mel(f: np.ndarray) -> np.ndarray:
            return 2595.0 * np.log10(1.0 + f / 700.0)

        def hz(m: np.ndarray) -> np.ndarray:
            return 700.0 * (10 ** (m / 2595.0) - 1.0)

        edges = hz(np.linspace(mel(np.array(self.f_min)), mel(np.array(self.f_max)), self.n_mels + 2))
        freqs = np.linspace(0, self.sample_rate / 2, self.n_fft // 2 + 1)
        bank = np.zeros((self.n_mels, len(freqs)))
        for i in range(self.n_mels):
            lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
            up = (freqs - lo) / max(mid - lo, 1e-9)
            down = (hi - freqs) / max(hi - mid, 1e-9)
            bank[i] = np.maximum(0, np.minimum(up, down))
        return bank.astype(np.float32)


def log_mel(samples: np.ndarray, config: MelConfig) -> np.ndarray:
    """Mono float samples in [-1, 1] -> (frames, n_mels) log-mel."""
    wave = torch.from_numpy(samples.astype(np.float32))
    spec = torch.stft(
        wave, config.n_fft, config.hop, window=torch.hann_window(config.n_fft), return_complex=True
    ).abs()
    mel = torch.from_numpy(config.filterbank()) @ spec
    return torch.log(mel.clamp(min=1e-5)).T.numpy()


def griffin_lim(log_mels: np.ndarray, config: MelConfig, iterations: int = 32, seed: int = 0) -> np.ndarray:
    """(frames, n_mels) log-mel -> float samples, by Griffin-Lim phase reconstruction."""
    bank = config.filterbank()
    magnitude = np.maximum(np.linalg.pinv(bank) @ np.exp(log_mels.T), 0.0)  # (freq, frames)
    rng = np.random.default_rng(seed)
    angles = np.exp(2j * np.pi * rng.random(magnitude.shape))
    window = torch.hann_window(config.n_fft)
    spec = torch.from_numpy(magnitude * angles)
    for _ in range(iterations):
        wave = torch.istft(spec, config.n_fft, config.hop, window=window)
        rebuilt = torch.stft(wave, config.n_fft, config.hop, window=window, return_complex=True)
        spec = torch.from_numpy(magnitude) * torch.exp(1j * torch.angle(rebuilt))
    samples: np.ndarray = torch.istft(spec, config.n_fft, config.hop, window=window).numpy()
    peak = float(np.abs(samples).max()) or 1.0
    out: np.ndarray = (samples / peak * 0.9).astype(np.float32)
    return out


@dataclass(frozen=True)
class VoiceConfig:
    """Acoustic model shape."""

    n_symbols: int = len(SYMBOLS)
    n_speakers: int = 8
    channels: int = 128
    n_mels: int = 80
    kernel: int = 5

    def to_dict(self) -> dict[str, int]:
        """JSON-ready form."""
        return asdict(self)


class _ConvStack(nn.Module):
    def __init__(self, channels: int, kernel: int, layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Conv1d(channels, channels, kernel, padding=kernel // 2), nn.GELU())
            for _ in range(layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (b, c, t)
        for layer in self.layers:
            x = x + layer(x)
        return x


class AcousticModel(nn.Module):
    """(jamo ids (b, n), frame->jamo index (b, t), speaker (b,)) -> log-mel (b, t, n_mels)."""

    def __init__(self, config: VoiceConfig, seed: int | None = None) -> None:
        """Build the layers (reproducible with `seed`)."""
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            self.config = config
            self.embed = nn.Embedding(config.n_symbols, config.channels)
            self.speaker = nn.Embedding(config.n_speakers, config.channels)
            self.encoder = _ConvStack(config.channels, config.kernel, 3)
            self.decoder = _ConvStack(config.channels, config.kernel, 3)
            self.position = nn.Linear(1, config.channels)
            self.out = nn.Conv1d(config.channels, config.n_mels, 1)

    def forward(self, ids: torch.Tensor, frame_index: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        """Log-mel frames for the given alignment."""
        x = self.encoder(self.embed(ids).transpose(1, 2)).transpose(1, 2)  # (b, n, c)
        frames = torch.gather(x, 1, frame_index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))  # (b, t, c)
        # Where in its jamo each frame is (0..1): lets the decoder shape a sound over its span.
        n = ids.shape[1]
        t = frame_index.shape[1]
        pos = (torch.arange(t, device=ids.device, dtype=torch.float32) * n / t) % 1.0
        frames = frames + self.position(pos.view(1, t, 1)) + self.speaker(speaker).unsqueeze(1)
        y = self.decoder(frames.transpose(1, 2))
        mel: torch.Tensor = self.out(y).transpose(1, 2)
        return mel


def uniform_index(n_tokens: int, n_frames: int) -> np.ndarray:
    """Frame -> jamo index when every jamo gets the same share of frames: (1, n_frames) int64."""
    return (np.arange(n_frames) * n_tokens // max(n_frames, 1)).reshape(1, -1).astype(np.int64)


@dataclass
class VoiceTrainResult:
    """Curve and best validation L1 of a voice training run."""

    history: list[dict[str, float]]
    best_val_l1: float
    steps: int


def _l1(model: AcousticModel, item: tuple[torch.Tensor, torch.Tensor], speaker: int) -> torch.Tensor:
    ids, mel = item
    index = torch.from_numpy(uniform_index(len(ids), len(mel)))
    pred = model(ids.unsqueeze(0), index, torch.tensor([speaker]))
    loss: torch.Tensor = (pred[0] - mel).abs().mean()
    return loss


def train_voice(
    model: AcousticModel,
    train_items: list[tuple[torch.Tensor, torch.Tensor]],
    val_items: list[tuple[torch.Tensor, torch.Tensor]],
    speaker: int | list[int],
    steps: int = 200,
    lr: float = 2e-3,
    seed: int = 13,
    eval_every: int = 25,
) -> VoiceTrainResult:
    """Adam on one utterance a step (lengths vary), L1 on log-mels; keeps the best weights.

    `speaker` is one speaker row for every item, or one per training item (a multi-speaker base);
    validation items use the first row.
    """
    speakers = speaker if isinstance(speaker, list) else [speaker] * len(train_items)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    history: list[dict[str, float]] = []
    best, best_state = float("inf"), {k: v.clone() for k, v in model.state_dict().items()}
    running = []
    for step in range(1, steps + 1):
        model.train()
        pick = int(rng.integers(len(train_items)))
        loss = _l1(model, train_items[pick], speakers[pick])
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        running.append(loss.item())
        if step % eval_every == 0 or step == steps:
            model.eval()
            with torch.no_grad():
                val = float(np.mean([_l1(model, item, speakers[0]).item() for item in val_items]))
            history.append({"step": step, "train_loss": float(np.mean(running)), "val_loss": val, "lr": lr})
            running = []
            if val < best:
                best, best_state = val, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    model.eval()
    return VoiceTrainResult(history, best, steps)


def export_voice_onnx(model: AcousticModel) -> bytes:
    """ONNX with dynamic jamo and frame counts: inputs ids (1, n), frame_index (1, t), speaker (1,)."""
    import logging
    import warnings

    model.eval()
    ids = torch.zeros((1, 7), dtype=torch.long)
    index = torch.from_numpy(uniform_index(7, 40))
    speaker = torch.zeros((1,), dtype=torch.long)
    n = torch.export.Dim("n", min=2, max=2048)
    t = torch.export.Dim("t", min=4, max=8192)
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model,
                (ids, index, speaker),
                dynamo=True,
                input_names=["ids", "frame_index", "speaker"],
                output_names=["mel"],
                dynamic_shapes={"ids": {1: n}, "frame_index": {1: t}, "speaker": None},
                verbose=False,
            )
    finally:
        logger.setLevel(level)
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program")
    data: bytes = program.model_proto.SerializeToString()
    return data


def voice_parity(model: AcousticModel, onnx_bytes: bytes, speaker: int = 0) -> float:
    """Max abs mel difference between torch and onnxruntime over a few lengths."""
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    worst = 0.0
    generator = torch.Generator().manual_seed(0)
    for n, t in ((3, 10), (17, 90), (40, 333)):
        ids = torch.randint(2, model.config.n_symbols, (1, n), generator=generator)
        index = uniform_index(n, t)
        with torch.no_grad():
            expected = model(ids, torch.from_numpy(index), torch.tensor([speaker])).numpy()
        (got,) = session.run(
            ["mel"],
            {"ids": ids.numpy(), "frame_index": index, "speaker": np.array([speaker], dtype=np.int64)},
        )
        worst = max(worst, float(np.abs(got - expected).max()))
    return worst
