"""What the Prefect UI shows for a run, rendered as plain tables and Markdown (no Prefect here).

Counts only, never message text: artifacts are visible to every operator of the workspace.
"""

from __future__ import annotations

from typing import Any

from schemas.search import BUNDLED_EMBEDDER
from tasks.datasets.build import DatasetResult
from tasks.indexing.indexer import IndexSummary
from tasks.ingest.uploads import IngestSummary


def _top(counts: dict[str, int], n: int = 6) -> str:
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = ", ".join(f"{k} {v}" for k, v in items[:n])
    return shown + (f", +{len(items) - n} more" if len(items) > n else "")


def ingest_rows(summaries: list[IngestSummary]) -> list[dict[str, Any]]:
    """One row per chat file: format, counts by kind and speaker, quarantined lines."""
    rows = []
    for s in summaries:
        for f in s.files:
            rows.append(
                {
                    "upload": s.file,
                    "file": f.file,
                    "format": f.format,
                    "encoding": f.encoding,
                    "messages": f.messages,
                    "quarantined": f.quarantined,
                    "first": f.first_ts or "",
                    "last": f.last_ts or "",
                    "by kind": _top(f.by_kind),
                    "speakers": len(f.by_speaker),
                    "resumed": s.resumed,
                }
            )
    return rows


def dataset_markdown(result: DatasetResult) -> str:
    """The data-quality report of a dataset version: steps, redactions, splits and gates."""
    m = result.manifest
    counts = m["counts"]
    lines = [
        f"# Dataset {result.owner_id}/{result.persona_id} v{result.version}",
        "",
        f"{'New version' if result.created else 'Unchanged input: existing version'} "
        f"(content hash `{result.content_hash[:16]}`).",
        "",
        f"Pairs: train **{counts['pairs_train']}** ({counts['sessions_train']} sessions), "
        f"validation **{counts['pairs_validation']}** ({counts['sessions_validation']} sessions).",
        "",
        "| step | rows in | rows out | changed |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {s['step']} | {s['rows_in']} | {s['rows_out']} | {s['changed']} |" for s in m["steps"]]
    if m.get("redactions"):
        lines += ["", "Redacted: " + ", ".join(f"{k} {v}" for k, v in sorted(m["redactions"].items()))]
    lines += ["", *(r.to_markdown() for r in result.reports)]
    return "\n".join(lines)


def index_rows(summaries: list[IndexSummary]) -> list[dict[str, Any]]:
    """One row per owner indexed."""
    return [
        {
            "owner": s.owner_id,
            "alias": s.alias,
            "indexed": s.indexed,
            "rejected": len(s.failed),
            "quarantine": s.quarantine_uri or "",
        }
        for s in summaries
    ]


def restore_markdown(
    owner_id: str,
    persona: str,
    ingests: list[IngestSummary],
    dataset: DatasetResult,
    index: IndexSummary | None,
    model: dict[str, Any] | None,
    reply: dict[str, Any] | None,
) -> str:
    """The closing summary of an instant restore."""
    messages = sum(s.messages for s in ingests)
    quarantined = sum(s.quarantined for s in ingests)
    lines = [
        f"# Instant restore: {owner_id} / {persona}",
        "",
        f"- ingested **{messages}** messages from {len(ingests)} upload(s), {quarantined} lines quarantined",
        f"- dataset `{dataset.prefix}` (v{dataset.version}, {'new' if dataset.created else 'unchanged'})",
        f"- indexed {index.indexed} messages into `{index.alias}`" if index else "- indexing skipped",
    ]
    if model is None:
        lines.append("- training skipped")
    else:
        state = "production" if model["promotion"]["promote"] else "candidate"
        metrics = model["metrics"]
        lines.append(
            f"- published text model **v{model['version']}** ({state}): validation loss "
            f"{metrics['val_loss']:.3f}, discrimination {metrics['discrimination_accuracy']:.0%}"
        )
    if reply is not None:  # counts only: an artifact never holds what the persona said
        lines.append(
            f"- first reply: answered the probe message ({reply['source']}, {len(reply['reply'])} characters)"
        )
    return "\n".join(lines)


def curve_svg(history: list[dict[str, float]], width: int = 560, height: int = 220) -> str:
    """Train and validation loss by step as a small standalone SVG (no plotting library)."""
    points = [
        (h["step"], h["train_loss"], h["val_loss"]) for h in history if h.get("val_loss") == h.get("val_loss")
    ]
    if not points:
        return ""
    pad = 36
    steps = [p[0] for p in points]
    losses = [v for p in points for v in p[1:]]
    lo, hi = min(losses), max(losses)
    span_x, span_y = max(steps) - min(steps) or 1, hi - lo or 1.0

    def xy(step: float, loss: float) -> str:
        x = pad + (step - min(steps)) / span_x * (width - 2 * pad)
        y = height - pad - (loss - lo) / span_y * (height - 2 * pad)
        return f"{x:.1f},{y:.1f}"

    train = " ".join(xy(s, t) for s, t, _ in points)
    val = " ".join(xy(s, v) for s, _, v in points)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        f'font-size="11"><rect width="100%" height="100%" fill="white"/>'
        f'<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{train}"/>'
        f'<polyline fill="none" stroke="#ff7f0e" stroke-width="2" points="{val}"/>'
        f'<text x="{pad}" y="14">loss {hi:.2f} .. {lo:.2f}; steps {min(steps)}..{max(steps)}</text>'
        f'<text x="{width - 150}" y="14" fill="#1f77b4">train</text>'
        f'<text x="{width - 100}" y="14" fill="#ff7f0e">validation</text></svg>'
    )


def training_markdown(manifest: dict[str, Any]) -> str:
    """The training curve (picture and table) of a published version."""
    import base64

    history = manifest.get("curve", [])
    svg = curve_svg(history)
    who = f"{manifest['owner_id']}/{manifest['persona']} {manifest['kind']}"
    lines = [f"# Training curve: {who} v{manifest['version']}", ""]
    source = manifest.get("corpus", {}).get("imported_from")
    if not history:
        return "\n".join([*lines, f"Imported pretrained model from `{source}`: not trained here."])
    if svg:
        lines += [
            f"![training curve](data:image/svg+xml;base64,{base64.b64encode(svg.encode()).decode()})",
            "",
        ]
    lines += ["| step | train loss | validation loss | lr |", "|---:|---:|---:|---:|"]
    lines += [
        f"| {h['step']} | {h['train_loss']:.4f} | {h['val_loss']:.4f} | {h['lr']:.2e} |" for h in history
    ]
    return "\n".join(lines)


def model_card(manifest: dict[str, Any]) -> str:
    """What a published persona model is, how good it is, and what not to expect from it."""
    m = manifest.get("metrics", {})
    hp = manifest.get("hyper_parameters", {})
    model = hp.get("model", {})
    promotion = manifest.get("promotion", {})
    gap = m.get("style_gap", {})
    nan = float("nan")
    base = manifest.get("base_version")
    rows = [
        ("validation loss (nats/token)", f"{m.get('val_loss', nan):.4f}"),
        ("validation perplexity", f"{m.get('val_perplexity', nan):.2f}"),
        ("validation nats/char", f"{m.get('val_nats_per_char', nan):.4f}"),
        (
            "discrimination (persona reply preferred over others' turns)",
            f"{m.get('discrimination_accuracy', nan):.1%}",
        ),
        ("style: reply length gap (relative)", f"{gap.get('length_rel_gap', nan):.2f}"),
        ("style: laughter-rate gap", f"{gap.get('laugh_rate_gap', nan):.2f}"),
        ("style: emoji-rate gap", f"{gap.get('emoji_rate_gap', nan):.2f}"),
        ("style: shared sentence endings", f"{gap.get('ending_overlap', nan):.0%}"),
        ("ONNX parity (max abs logit diff)", f"{manifest.get('parity', {}).get('max_abs_diff', nan):.1e}"),
    ]
    shape = (
        f"{model.get('n_layer')} layers, d={model.get('d_model')}, context {model.get('block_size')} tokens, "
        f"vocabulary {hp.get('vocab_size')}"
    )
    if model.get("arch") == "hf":  # an imported pretrained base, fine-tuned
        shape = (
            f"pretrained {model.get('hf_config', {}).get('model_type')} from `{model.get('source')}`, "
            f"context {model.get('block_size')} tokens, vocabulary {hp.get('vocab_size')}"
        )
    verdict = "production" if promotion.get("promote") else "candidate only"
    lines = [
        f"# Model card: {manifest['owner_id']}/{manifest['persona']} text v{manifest['version']}",
        "",
        f"- base: {f'v{base}' if base else 'none (trained from scratch with its own tokenizer)'}",
        f"- dataset: v{manifest['dataset']['version']} (`{manifest['dataset']['content_hash'][:16]}`)",
        f"- model: decoder-only transformer, {shape}; {hp.get('fine_tune', 'full')} fine-tune "
        f"on {hp.get('device')}",
        f"- training: {m.get('steps')} steps (best at {m.get('best_step')}), "
        f"{m.get('train_tokens_per_s', 0):,.0f} tokens/s",
        "",
        "| metric | value |",
        "|---|---:|",
        *(f"| {name} | {value} |" for name, value in rows),
        "",
        f"**Promotion:** {verdict}: {promotion.get('reason', '')}",
        "",
        conversation_markdown(manifest, heading="##"),
        "",
        "**Use and limits.** A small model fitted to one person's messages "
        f"({(m.get('style_real') or {}).get('n', 0)} held-out replies evaluated). It echoes their words, "
        "endings and rhythm; it does not know facts beyond the chats, reasons poorly, and may produce fluent "
        "nonsense. It is not the person: `rememberme chat` says so on the first turn and refuses "
        "present-day questions in their voice.",
    ]
    return "\n".join(lines)


def conversation_markdown(manifest: dict[str, Any], heading: str = "#") -> str:
    """Does the version answer what was said: its scorecard beside production's, the calibration."""
    from tasks.training.conversation_eval import card_from_dict, side_by_side

    data = manifest.get("conversation_eval")
    who = f"{manifest['owner_id']}/{manifest['persona']} text v{manifest['version']}"
    if not data:
        return f"{heading} Conversation evaluation: {who}\n\nNot evaluated (published before it existed)."
    card = card_from_dict(data)
    promotion = manifest.get("promotion", {})
    theirs = promotion.get("production_scorecard")
    lines = [f"{heading} Conversation evaluation: {who}", ""]
    if theirs:
        current = f"production v{promotion.get('current_version')}"
        lines.append(side_by_side(card, card_from_dict(theirs), (f"v{manifest['version']}", current)))
    else:
        lines.append(side_by_side(card, card, (f"v{manifest['version']}", "(no production before)")))
    lost = promotion.get("lost_on") or []
    lines += [
        "",
        f"**Lost on:** {'; '.join(lost)}" if lost else "**Lost on:** nothing (not worse than production)",
    ]
    chat = manifest.get("chat") or {}
    if chat:
        share = chat.get("answered_share")
        lines += [
            "",
            f"Reply ranker ({chat.get('source', 'default')}, {chat.get('held_out', 0)} held-out contexts): "
            f"a stored reply is said when its context fits at cosine >= {chat.get('threshold', 0):.3f}"
            + (f" ({share:.0%} of held-out contexts)" if share is not None else "")
            + f"; weights: reply {chat.get('reply_weight')}, conversation {chat.get('conversation_weight')}, "
            f"model likelihood {chat.get('likelihood_weight')}; sentence embedder "
            f"`{chat.get('embedder') or BUNDLED_EMBEDDER}`; objective {chat.get('objective', 'similarity')}, "
            f"{chat.get('held_out_verbatim', 0)} held-out messages answered with their verbatim twins left "
            f"out; {len(chat.get('bland_lines') or ())} lines the persona says to anything (said only to "
            "small talk).",
        ]
    lines += [
        "",
        "Response selection: the real reply ranked among 9 replies of other sessions (recall@1 of 10, MRR). "
        "Answer quality: what chat would say to messages it never saw, against the real reply; contrastive: "
        "similarity to the real reply minus that to other contexts' (a bland line scores about 0); "
        "bland share: lines the persona says to anything. Safety counts must be 0.",
    ]
    return "\n".join(lines)


def voice_model_card(manifest: dict[str, Any]) -> str:
    """What a published voice model is, how close it gets, and what not to expect from it."""
    m = manifest.get("metrics", {})
    nan = float("nan")
    base = manifest.get("base_version")
    dataset = manifest["dataset"]
    rows = [
        ("speech (minutes)", f"{m.get('minutes', nan):.1f}"),
        ("transcribed utterances", f"{m.get('utterances', 0)}"),
        ("... of which by speech recognition", f"{m.get('asr_utterances', 0)}"),
        ("validation log-mel L1", f"{m.get('val_l1_log_mel', nan):.4f}"),
        ("validation length error (predicted durations)", f"{m.get('val_length_error', nan):.1%}"),
        ("ONNX parity (max abs diff)", f"{manifest.get('parity', {}).get('max_abs_diff', nan):.1e}"),
    ]
    similar = (manifest.get("similarity") or {}).get("candidate")
    if similar:  # how much it sounds like them, on held-out sentences (tasks/voice/similarity.py)
        rows += [
            ("speaker similarity to them (synthesised held-out sentences)", f"{similar['similarity']:.3f}"),
            ("... their own held-out recordings (the ceiling)", f"{similar['real_similarity']:.3f}"),
            (f"identified as them among {similar['competitors'] + 1} voices", f"{similar['identified']:.0%}"),
            ("length / real length", f"{similar['length_ratio']:.2f}"),
            ("pitch contour correlation", f"{similar['f0_correlation']:.2f}"),
            ("log-mel distance to the real recording (DTW)", f"{similar['mel_distance']:.3f}"),
        ]
    promotion = manifest.get("promotion") or {}
    verdict = ("served" if promotion.get("promote", True) else "not served") + (
        f": {promotion['reason']}" if promotion.get("reason") else ""
    )
    return "\n".join(
        [
            f"# Model card: {manifest['owner_id']}/{manifest['persona']} voice v{manifest['version']}",
            "",
            f"- gate: {verdict}",
            "",
            f"- base: {f'voice base v{base}' if base else 'none (trained from scratch)'}",
            f"- dataset: voice v{dataset['version']} (`{dataset['content_hash'][:16]}`)",
            "- voice: their own recorded sounds, selected and joined (unit selection); sounds they never "
            "recorded: a jamo text-to-mel model with learned durations and a Griffin-Lim vocoder"
            if "units.npz" in manifest.get("files", {})
            else "- model: jamo text-to-mel with learned durations, Griffin-Lim vocoder",
            "",
            "| metric | value |",
            "|---|---:|",
            *(f"| {name} | {value} |" for name, value in rows),
            "",
            f"**Use and limits.** {manifest.get('model_card', '')}",
        ]
    )
