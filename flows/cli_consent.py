"""`rememberme consent base --owner O [--grant|--revoke]`: may the owner's uploads teach the bases."""

from typing import Annotated

import typer

from flows.cli_options import Json, Lake, Owner, settings
from flows.cli_output import emit_json

consent_app = typer.Typer(
    help="what an owner's data may train beyond their own personas", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add these commands to the CLI."""
    app.add_typer(consent_app, name="consent")


@consent_app.command(
    "base",
    help="may the owner's uploads (KakaoTalk exports, recordings) teach the shared text and voice bases, "
    "redacted (off unless granted); without --grant or --revoke: show",
)
def cmd_consent_base(
    ctx: typer.Context,
    owner: Owner,
    grant: Annotated[bool, typer.Option("--grant", help="allow it from the next base on")] = False,
    revoke: Annotated[
        bool, typer.Option("--revoke", help="withdraw it: the next base leaves it out")
    ] = False,
    lake: Lake = None,
    as_json: Json = False,
) -> None:
    """Show, grant or revoke an owner's base-training opt-in."""
    from infra.storage import open_storage
    from schemas.names import validate_owner
    from tasks.trust.consent import base_opt_in, set_base_opt_in

    if grant and revoke:
        raise typer.BadParameter(
            "they exclude each other (give one)", ctx, param_hint=["--grant", "--revoke"]
        )
    storage = open_storage(settings(lake=lake).lake_url)
    owner = validate_owner(owner)
    if grant or revoke:
        set_base_opt_in(storage, owner, grant)
    allowed = base_opt_in(storage, owner)
    if as_json:
        emit_json({"owner_id": owner, "base_training": allowed})
    else:
        state = "may" if allowed else "may not"
        print(f"{owner}: uploads {state} teach the shared bases (redacted)")
