"""A small text-to-mel acoustic model (Korean jamo in, log-mel frames out) and a Griffin-Lim vocoder.

Deliberately simple, so it trains on minutes of audio on a CPU and needs no downloaded weights:
- input: jamo ids (Hangul syllables decomposed arithmetically; other characters kept as is),
- alignment: learned - a monotonic alignment search (`models/align.py`) finds each jamo's frames
  under an aligner head, and a duration predictor learns those lengths; at inference the predicted
  durations give the frame->jamo index, which is an input of the mel graph, so ONNX sees no
  data-dependent shapes (uniform alignment, every jamo the same share, is kept as the baseline),
- encoder: embedding + 1-D convolutions; a speaker embedding is added (the base has one row per
  training speaker; a user's checkpoint adapts a new row and the weights to their recordings),
- decoder: convolutions over frames -> 80 log-mel bins,
- vocoder: Griffin-Lim over the mel filterbank's pseudo-inverse (numpy; quality is robotic).
No I/O here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from torch import nn

from models.align import durations, index_from_durations, monotonic_alignment, uniform_index
from models.exporter import ExportJob, export_isolated

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
    """(jamo ids (b, n), frame->jamo index (b, t), speaker (b,)) -> log-mel (b, t, n_mels).

    Besides the text-to-mel path it has an aligner head (each jamo's expected log-mel, used to
    find where its frames are) and a duration predictor (log frames per jamo) for inference.
    """

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
            self.align = nn.Linear(config.channels, config.n_mels)
            self.duration = nn.Sequential(
                nn.Conv1d(config.channels, config.channels, config.kernel, padding=config.kernel // 2),
                nn.GELU(),
                nn.Conv1d(config.channels, 1, 1),
            )

    def encode(self, ids: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        """Jamo states (b, n, c), speaker-conditioned."""
        x = self.encoder(self.embed(ids).transpose(1, 2)).transpose(1, 2)
        out: torch.Tensor = x + self.speaker(speaker).unsqueeze(1)
        return out

    def templates(self, ids: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        """Each jamo's expected log-mel (b, n, n_mels): what the alignment search compares frames to."""
        out: torch.Tensor = self.align(self.encode(ids, speaker))
        return out

    def log_durations(self, ids: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        """Predicted log(1 + frames) per jamo (b, n)."""
        x = self.encode(ids, speaker).detach()  # durations must not pull the text encoder around
        out: torch.Tensor = self.duration(x.transpose(1, 2))[:, 0]
        return out

    def forward(self, ids: torch.Tensor, frame_index: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        """Log-mel frames for the given alignment."""
        x = self.encode(ids, speaker)
        frames = torch.gather(x, 1, frame_index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))  # (b, t, c)
        # Where in its jamo's span each frame is (0..1): lets the decoder shape a sound over it.
        n, t = ids.shape[1], frame_index.shape[1]
        counts = (frame_index.unsqueeze(-1) == torch.arange(n, device=ids.device)).sum(1)  # (b, n)
        starts = torch.cumsum(counts, 1) - counts
        span = torch.gather(counts, 1, frame_index).clamp(min=1).to(torch.float32)
        offset = torch.arange(t, device=ids.device).unsqueeze(0) - torch.gather(starts, 1, frame_index)
        pos = (offset.to(torch.float32) / span).unsqueeze(-1)
        y = self.decoder((frames + self.position(pos)).transpose(1, 2))
        mel: torch.Tensor = self.out(y).transpose(1, 2)
        return mel


def calibrate_pace(
    model: AcousticModel, items: list[tuple[torch.Tensor, torch.Tensor]], speaker: int = 0
) -> float:
    """Real frames / predicted frames over `items`: removes the duration predictor's overall bias.

    The predictor learns log durations, whose errors do not cancel in the sum (rounding, and
    exp of a mean is not the mean of exp), so spoken lengths drift; this one number, stored with
    the checkpoint, puts the total back on the speaker's real pace.
    """
    real = predicted = 0.0
    with torch.no_grad():
        for ids, mel in items:
            log_dur = model.log_durations(ids.unsqueeze(0), torch.tensor([speaker]))[0].numpy()
            predicted += float(frames_from_log_durations(log_dur).sum())
            real += len(mel)
    return real / predicted if predicted else 1.0


def aligned_index(model: AcousticModel, ids: torch.Tensor, mel: torch.Tensor, speaker: int = 0) -> np.ndarray:
    """Frame -> jamo index (t,) of a real recording under the trained aligner (monotonic search)."""
    with torch.no_grad():
        templates = model.templates(ids.unsqueeze(0), torch.tensor([speaker]))[0]
        cost = (templates.unsqueeze(1) - mel.unsqueeze(0)).abs().mean(-1).numpy()
    return monotonic_alignment(cost)


def single_speaker(model: AcousticModel, speaker: int = 0) -> AcousticModel:
    """A copy of `model` whose speaker table holds only row `speaker` (as row 0).

    A persona's published voice carries its own speaker only: the base's other rows were learned
    from other families' recordings.
    """
    config = replace(model.config, n_speakers=1)
    out = AcousticModel(config)
    state = dict(model.state_dict())
    state["speaker.weight"] = state["speaker.weight"][speaker : speaker + 1].clone()
    out.load_state_dict(state)
    return out.eval()


class _DurationGraph(nn.Module):
    """The duration predictor alone, for its own ONNX graph."""

    def __init__(self, model: AcousticModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        return self.model.log_durations(ids, speaker)


def frames_from_log_durations(log_durations: np.ndarray, pace: float = 1.0) -> np.ndarray:
    """Whole frames per jamo (at least one) from predicted log(1 + frames)."""
    frames = np.rint((np.exp(np.asarray(log_durations, dtype=np.float64)) - 1.0) * pace)
    return np.maximum(frames, 1).astype(np.int64)


@dataclass
class VoiceTrainResult:
    """Curve and best validation L1 of a voice training run."""

    history: list[dict[str, float]]
    best_val_l1: float
    steps: int
    val_length_error: float = float("nan")  # |predicted - real frames| / real, at the best weights


def _losses(
    model: AcousticModel, item: tuple[torch.Tensor, torch.Tensor], speaker: int, learned: bool
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(training objective, mel L1, relative error of the predicted length) of one utterance."""
    ids, mel = item
    ids_b, spk = ids.unsqueeze(0), torch.tensor([speaker])
    templates = model.templates(ids_b, spk)[0]  # (n, n_mels)
    if learned:
        with torch.no_grad():
            cost = (templates.unsqueeze(1) - mel.unsqueeze(0)).abs().mean(-1).numpy()
        index = monotonic_alignment(cost)
    else:
        index = uniform_index(len(ids), len(mel))[0]
    frame_index = torch.from_numpy(index)
    pred = model(ids_b, frame_index.unsqueeze(0), spk)[0]
    mel_l1 = (pred - mel).abs().mean()
    align_l1 = (templates[frame_index] - mel).abs().mean()
    log_dur = model.log_durations(ids_b, spk)[0]
    target = torch.from_numpy(np.log1p(durations(index, len(ids))).astype(np.float32))
    dur_loss = ((log_dur - target) ** 2).mean()
    predicted = float(frames_from_log_durations(log_dur.detach().numpy()).sum())
    length_error = abs(predicted - len(mel)) / len(mel)
    return mel_l1 + align_l1 + dur_loss, mel_l1, length_error


def train_voice(
    model: AcousticModel,
    train_items: list[tuple[torch.Tensor, torch.Tensor]],
    val_items: list[tuple[torch.Tensor, torch.Tensor]],
    speaker: int | list[int],
    steps: int = 200,
    lr: float = 2e-3,
    seed: int = 13,
    eval_every: int = 25,
    alignment: str = "learned",
) -> VoiceTrainResult:
    """Adam on one utterance a step (lengths vary); keeps the best weights by validation mel L1.

    The objective adds three terms: the decoder's log-mel L1 along the alignment, the aligner's
    L1 (each jamo's template vs its frames) and the duration predictor's squared log error. With
    `alignment="learned"` the first quarter of the steps (at most 200) uses the uniform alignment
    while the aligner learns what jamo sound like; after that every step searches the monotonic
    alignment under the current aligner. `speaker` is one speaker row for every item, or one per
    training item (a multi-speaker base); validation items use the first row.
    """
    if alignment not in ("learned", "uniform"):
        raise ValueError("alignment must be 'learned' or 'uniform'")
    speakers = speaker if isinstance(speaker, list) else [speaker] * len(train_items)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warmup = min(steps // 4, 200) if alignment == "learned" else steps + 1
    history: list[dict[str, float]] = []
    best, best_state = float("inf"), {k: v.clone() for k, v in model.state_dict().items()}
    best_length_error = float("nan")
    running = []
    for step in range(1, steps + 1):
        model.train()
        pick = int(rng.integers(len(train_items)))
        loss, _, _ = _losses(model, train_items[pick], speakers[pick], learned=step > warmup)
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        running.append(loss.item())
        if step % eval_every == 0 or step == steps:
            model.eval()
            with torch.no_grad():
                scores = [_losses(model, item, speakers[0], learned=step > warmup) for item in val_items]
            val = float(np.mean([mel.item() for _, mel, _ in scores]))
            length_error = float(np.mean([err for _, _, err in scores]))
            history.append({"step": step, "train_loss": float(np.mean(running)), "val_loss": val, "lr": lr,
                            "val_length_error": length_error})  # fmt: skip
            running = []
            if val < best and step > min(warmup, steps - 1):  # compare only under the final alignment
                best, best_state = val, {k: v.clone() for k, v in model.state_dict().items()}
                best_length_error = length_error
    model.load_state_dict(best_state)
    model.eval()
    return VoiceTrainResult(history, best, steps, best_length_error)


def export_voice_onnx(model: AcousticModel) -> tuple[bytes, bytes]:
    """Two ONNX graphs with dynamic lengths: text-to-mel and the duration predictor.

    `model.onnx`: ids (1, n), frame_index (1, t), speaker (1,) -> mel (1, t, n_mels);
    `durations.onnx`: ids (1, n), speaker (1,) -> log_durations (1, n).
    """
    model.eval()
    ids = torch.zeros((1, 7), dtype=torch.long)
    index = torch.from_numpy(uniform_index(7, 40))
    speaker = torch.zeros((1,), dtype=torch.long)
    n, t = ("n", 2, 2048), ("t", 4, 8192)
    mel = export_isolated(
        ExportJob(model, (ids, index, speaker), ["ids", "frame_index", "speaker"], ["mel"],
                  {"ids": {1: n}, "frame_index": {1: t}, "speaker": None})
    )  # fmt: skip
    lengths = export_isolated(
        ExportJob(_DurationGraph(model), (ids, speaker), ["ids", "speaker"], ["log_durations"],
                  {"ids": {1: n}, "speaker": None})
    )  # fmt: skip
    return mel, lengths


def voice_parity(model: AcousticModel, onnx: tuple[bytes, bytes], speaker: int = 0) -> float:
    """Max abs difference between torch and onnxruntime (mel and log durations) over a few lengths."""
    import onnxruntime as ort

    mel_session = ort.InferenceSession(onnx[0], providers=["CPUExecutionProvider"])
    duration_session = ort.InferenceSession(onnx[1], providers=["CPUExecutionProvider"])
    worst = 0.0
    generator = torch.Generator().manual_seed(0)
    spk = np.array([speaker], dtype=np.int64)
    for n, t in ((3, 10), (17, 90), (40, 333)):
        ids = torch.randint(2, model.config.n_symbols, (1, n), generator=generator)
        index = index_from_durations(
            torch.randint(1, 2 * t // n + 1, (n,), generator=generator).numpy()
        )  # uneven spans, as predicted durations give
        with torch.no_grad():
            expected = model(ids, torch.from_numpy(index), torch.tensor([speaker])).numpy()
            expected_durations = model.log_durations(ids, torch.tensor([speaker])).numpy()
        (got,) = mel_session.run(["mel"], {"ids": ids.numpy(), "frame_index": index, "speaker": spk})
        (got_durations,) = duration_session.run(["log_durations"], {"ids": ids.numpy(), "speaker": spk})
        worst = max(
            worst,
            float(np.abs(got - expected).max()),
            float(np.abs(got_durations - expected_durations).max()),
        )
    return worst
