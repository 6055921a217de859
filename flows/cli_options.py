"""Every option the `rememberme` commands share, declared once; defaults come from the settings.

An option whose default depends on the environment (`--lake`, `--tz`) defaults to None here and is
resolved from `infra.settings.get_settings()` inside the command (`settings(...)`); its help says
where the value comes from. Dataset defaults are `TurnOptions`' own (the light options module), not
copies. Nothing heavy is imported: this module loads on every command, `chat --message` included.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import typer

from infra.settings import Settings, get_settings
from tasks.datasets.options import MIN_PAIRS, TurnOptions

#: The defaults of `dataset build`'s turn options: the dataclass's own values.
TURNS = TurnOptions()


def from_settings(field: str) -> str:
    """Help text for a default read at run time: its environment variable, else the built-in value."""
    variable = f"{Settings.model_config.get('env_prefix', '')}{field.upper()}"
    return f"${variable}, else {Settings.model_fields[field].default}"


def settings(*, lake: str | None = None, tz: str | None = None) -> Settings:
    """The process's settings (read once), with this command's `--lake` / `--tz` when given."""
    base = get_settings()
    overrides = {k: v for k, v in (("lake_url", lake), ("kakao_timezone", tz)) if v}
    return Settings.model_validate({**base.model_dump(), **overrides}) if overrides else base


def fraction(text: str) -> float:
    """A share in [0, 1) (the usage error names the option)."""
    try:
        value = float(text)
    except ValueError:
        raise typer.BadParameter(f"not a number: {text!r}") from None
    if not 0 <= value < 1:
        raise typer.BadParameter(f"must be at least 0 and below 1, got {value}")
    return value


def known_format(name: str) -> str:
    """`auto` or a variant of the parser's registry (imported only to check: it loads pyarrow)."""
    from parsers.exports import LINE, MESSENGER, SMS, TELEGRAM, WHATSAPP
    from parsers.kakao.formats import ALL_FORMAT_NAMES

    names = (*ALL_FORMAT_NAMES, WHATSAPP, SMS, TELEGRAM, LINE, MESSENGER)
    if name != "auto" and name not in names:
        raise typer.BadParameter(f"unknown variant {name!r} (choose auto or one of: {', '.join(names)})")
    return name


def known_date_order(order: str | None) -> str | None:
    """`dmy`, `mdy`, `ymd` or unset."""
    if order is not None and order not in ("dmy", "mdy", "ymd"):
        raise typer.BadParameter(f"unknown date order {order!r} (choose dmy, mdy or ymd)")
    return order


# --- who and where -------------------------------------------------------------------------------
Lake = Annotated[
    str | None, typer.Option("--lake", metavar="URL", help="lake URL", show_default=from_settings("lake_url"))
]
Owner = Annotated[str, typer.Option("--owner", metavar="OWNER", help="the platform user who owns the data")]
Persona = Annotated[
    str,
    typer.Option("--persona", metavar="NAME", help="the person to restore: their display name in the chats"),
]
PersonaFilter = Annotated[
    str | None,
    typer.Option(
        "--persona", metavar="NAME", help="only this persona (their display name)", show_default="all"
    ),
]
Aliases = Annotated[
    list[str] | None,
    typer.Option("--alias", metavar="NAME", help="another display name of the persona (repeatable)"),
]
Version = Annotated[
    str | None,
    typer.Option("--version", metavar="N|ALIAS", help="a version number or alias", show_default="production"),
]
ModelKind = Annotated[Literal["text", "voice", "base"], typer.Option("--kind", help="model kind")]

# --- output --------------------------------------------------------------------------------------
Json = Annotated[bool, typer.Option("--json", help="print the result as one JSON document")]

# --- exports -------------------------------------------------------------------------------------
Timezone = Annotated[
    str | None,
    typer.Option(
        "--tz",
        metavar="ZONE",
        help="zone of the export's local times",
        show_default=from_settings("kakao_timezone"),
    ),
]
ExportFormat = Annotated[
    str,
    typer.Option(
        "--format",
        metavar="auto|NAME",
        callback=known_format,
        help="export variant (names: `rememberme formats`)",
    ),
]

DateOrder = Annotated[
    str | None,
    typer.Option(
        "--date-order",
        metavar="dmy|mdy|ymd",
        callback=known_date_order,
        help="how a WhatsApp export's dates read (default: decided from the whole file)",
    ),
]

# --- search and flows ----------------------------------------------------------------------------
NoIndex = Annotated[bool, typer.Option("--no-index", help="skip indexing (no Elasticsearch)")]
NoVectors = Annotated[
    bool, typer.Option("--no-vectors", help="skip sentence vectors (faster; no semantic message search)")
]
Steps = Annotated[int | None, typer.Option("--steps", metavar="N", help="training steps")]
Day = Annotated[date | None, typer.Option("--as-of", metavar="YYYY-MM-DD", parser=date.fromisoformat)]

# --- dataset build: TurnOptions ------------------------------------------------------------------
BurstGap = Annotated[
    int, typer.Option("--burst-gap", metavar="S", help="merge a speaker's messages this close (s)")
]
SessionGap = Annotated[
    int, typer.Option("--session-gap", metavar="S", help="a longer silence starts a session (s)")
]
ContextTurns = Annotated[
    int, typer.Option("--context-turns", metavar="K", help="turns of context before a reply")
]
Validation = Annotated[
    float, typer.Option("--validation", metavar="F", parser=fraction, help="share of sessions held out")
]
Seed = Annotated[int, typer.Option("--seed", metavar="N", help="seed of the train/validation split")]
MinPairs = Annotated[
    int, typer.Option("--min-pairs", metavar="N", help="fewest training pairs the gate accepts")
]
MinPairsOrDefault = Annotated[
    int | None,
    typer.Option(
        "--min-pairs", metavar="N", help="fewest reply pairs a persona needs", show_default=str(MIN_PAIRS)
    ),
]
