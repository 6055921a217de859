"""Cleaning steps: Message rows in, Message rows out, every dropped row with a named reason.

Each step has one shape (`Step`): a DataFrame of messages in, the kept rows and a table of
dropped rows (message_id, step, reason) out. Steps never drop silently; the audit table they
produce lands next to the dataset so any missing row can be explained.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from schemas.message import ATTACHMENT_KINDS
from schemas.names import slug

MAX_TEXT_BYTES = 64 * 1024
EARLIEST = datetime(2009, 1, 1, tzinfo=UTC)

_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
_ZERO_WIDTH = "[\u200b\u200c\u200d\u2060\ufeff]"
_URL = r"(?:https?://|www\.)[^\s<>\"']+"
LAUGHTER_CHARS = "ㅋㅎㅠㅜ"


@dataclass(frozen=True)
class CleanOptions:
    """Knobs of the cleaning steps (recorded in the dataset manifest)."""

    laughter_cap: int = 6
    url_token: str = "<url>"


@dataclass
class StepResult:
    """The rows a step kept, and an audit row for each row it dropped or changed."""

    kept: pd.DataFrame
    audit: pd.DataFrame  # message_id, step, action ("dropped" or "changed"), reason


Step = Callable[[pd.DataFrame], StepResult]


_AUDIT_COLUMNS = ("message_id", "step", "action", "reason")


def empty_audit() -> pd.DataFrame:
    """An audit table with no rows."""
    return pd.DataFrame({c: pd.Series([], dtype="str") for c in _AUDIT_COLUMNS})


def _split(df: pd.DataFrame, drop: pd.Series | np.ndarray, step: str, reason: str | pd.Series) -> StepResult:
    drop = np.asarray(drop, dtype=bool)
    if not drop.any():
        return StepResult(df.reset_index(drop=True), empty_audit())
    reasons = np.asarray(reason[drop]) if isinstance(reason, pd.Series) else reason
    dropped = pd.DataFrame(
        {
            "message_id": df.loc[drop, "message_id"].to_numpy(),
            "step": step,
            "action": "dropped",
            "reason": reasons,
        }
    )
    return StepResult(df.loc[~drop].reset_index(drop=True), dropped.astype("str"))


def reject_bad_rows(df: pd.DataFrame, now: datetime | None = None) -> StepResult:
    """Quarantine impossible timestamps, enormous texts and control characters (bad input)."""
    now = now or datetime.now(UTC)
    text = pa.array(df["text"].astype("str").to_numpy(), pa.string())
    reason = pd.Series("", index=df.index, dtype="str")
    too_big = pc.greater(pc.binary_length(text), MAX_TEXT_BYTES).to_numpy(zero_copy_only=False)
    reason = reason.mask(too_big, "text longer than 64 KiB")
    control = pc.match_substring_regex(text, _CONTROL).to_numpy(zero_copy_only=False)
    reason = reason.mask(control & (reason == ""), "control characters in text")
    ts = df["ts"]
    bad_ts = ts.isna() | (ts < pd.Timestamp(EARLIEST)) | (ts > pd.Timestamp(now + timedelta(days=1)))
    reason = reason.mask(bad_ts & (reason == ""), "implausible timestamp")
    return _split(df, (reason != "").to_numpy(), "reject_bad_rows", reason)


def drop_system(df: pd.DataFrame) -> StepResult:
    """System events (joins, leaves, notices) are not anybody's words."""
    return _split(df, df["kind"] == "system", "drop_system", "system event")


def drop_deleted(df: pd.DataFrame) -> StepResult:
    """Deleted and admin-hidden placeholders carry no text."""
    return _split(df, df["kind"].isin(["deleted", "hidden"]), "drop_deleted", "deleted or hidden placeholder")


def drop_attachments(df: pd.DataFrame) -> StepResult:
    """Pure attachment placeholders (사진, 이모티콘, 보이스톡 ...) are not text to learn from."""
    kinds = df["kind"]
    return _split(
        df, kinds.isin(ATTACHMENT_KINDS), "drop_attachments", "attachment placeholder (" + kinds + ")"
    )


def normalize_text(df: pd.DataFrame, options: CleanOptions = CleanOptions()) -> StepResult:
    """NFC, zero-width characters out, whitespace collapsed, laughter runs capped, URLs to a token."""
    text = pa.array(df["text"].astype("str").to_numpy(), pa.string())
    text = pc.utf8_normalize(text, "NFC")
    text = pc.replace_substring_regex(text, _ZERO_WIDTH, "")
    text = pc.replace_substring_regex(text, _URL, options.url_token)
    text = pc.replace_substring_regex(text, "[ \t\u00a0\u3000]+", " ")
    text = pc.replace_substring_regex(text, " *\n *", "\n")
    text = pc.replace_substring_regex(text, "\n{3,}", "\n\n")
    cap = options.laughter_cap
    for char in LAUGHTER_CHARS:
        text = pc.replace_substring_regex(text, f"{char}{{{cap + 1},}}", char * cap)
    text = pc.utf8_trim_whitespace(text)
    out = df.copy()
    out["text"] = pd.Series(text.to_numpy(zero_copy_only=False), index=df.index, dtype="str")
    changed = (out["text"] != df["text"].astype("str")).to_numpy()
    audit = pd.DataFrame(
        {
            "message_id": df.loc[changed, "message_id"].to_numpy(),
            "step": "normalize_text",
            "action": "changed",
            "reason": "normalized (unicode, whitespace, laughter runs, urls)",
        }
    )
    return StepResult(out.reset_index(drop=True), audit.astype("str") if len(audit) else empty_audit())


def drop_empty(df: pd.DataFrame) -> StepResult:
    """Nothing left to learn from after normalisation."""
    return _split(df, df["text"].str.len() == 0, "drop_empty", "empty text")


def drop_duplicates(df: pd.DataFrame) -> StepResult:
    """The same message seen in overlapping exports of one chat (PC and phone, two dates).

    Key: minute, speaker, text. Within one file a repeated message is real ("ㅋㅋ" twice in a
    minute) and kept; across files, the rows of the file holding the most copies of a key win.
    """
    if df.empty:
        return _split(df, np.zeros(0, bool), "drop_duplicates", "")
    minute = df["ts"].dt.floor("min")
    key = pd.DataFrame({"m": minute, "s": df["speaker"].fillna(""), "t": df["text"]})
    # A 64-bit hash finds the few keys seen more than once; only those rows are grouped exactly.
    hashed = pd.util.hash_pandas_object(key, index=False).to_numpy()
    repeated = pd.Series(hashed).duplicated(keep=False).to_numpy()
    drop = np.zeros(len(df), dtype=bool)
    if repeated.any():
        sub = key.loc[repeated].copy()
        sub["f"] = df.loc[repeated, "message_id"].str.split("-", n=1).str[0].to_numpy()
        sub["row"] = np.flatnonzero(repeated)
        per_file = (
            sub.groupby(["m", "s", "t", "f"], sort=False, observed=True).size().rename("n").reset_index()
        )
        per_file = per_file.sort_values(["m", "s", "t", "n", "f"], ascending=[True, True, True, False, True])
        winner = per_file.drop_duplicates(["m", "s", "t"])[["m", "s", "t", "f"]].rename(
            columns={"f": "winner"}
        )
        merged = sub.merge(winner, on=["m", "s", "t"], how="left", sort=False)
        drop[merged.loc[merged["f"] != merged["winner"], "row"].to_numpy()] = True
    return _split(df, drop, "drop_duplicates", "duplicate of a message in an overlapping export")


def run_steps(
    df: pd.DataFrame, steps: Sequence[tuple[str, Step]]
) -> tuple[pd.DataFrame, pd.DataFrame, list[dict[str, object]]]:
    """Run steps in order; return kept rows, the audit of dropped rows, and rows in/out per step."""
    audits = []
    counts: list[dict[str, object]] = []
    for name, step in steps:
        before = len(df)
        result = step(df)
        df = result.kept
        audits.append(result.audit)
        changed = int((result.audit["action"] == "changed").sum())
        counts.append(
            {
                "step": name,
                "rows_in": before,
                "rows_out": len(df),
                "dropped": before - len(df),
                "changed": changed,
            }
        )
    audit = pd.concat([empty_audit(), *audits], ignore_index=True)
    return df, audit, counts


def subject_key(owner_id: str, persona: str) -> str:
    """An opaque, stable key of one owner's subject (a persona name) for records that outlive it.

    Lineage of bases and forget's tombstones name subjects by this key, never by name.
    """
    return persona_key(owner_id, slug(persona))


def persona_key(owner_id: str, persona_id: str) -> str:
    """`subject_key` from a persona id (`slug` output) rather than a display name."""
    return hashlib.sha256(f"{owner_id}|{persona_id}".encode()).hexdigest()[:16]
