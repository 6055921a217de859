"""`rememberme consent base --owner O --grant|--revoke|--show`: may the owner's uploads teach the bases."""

from __future__ import annotations

import argparse
import json
from typing import Any

from infra.settings import Settings
from infra.storage import open_storage
from schemas.names import validate_owner


def add_commands(sub: Any) -> None:
    """Register the consent command on the CLI's subparsers."""
    consent = sub.add_parser("consent", help="what an owner's data may train beyond their own personas")
    kinds = consent.add_subparsers(dest="consent_command", required=True, metavar="WHAT")
    base = kinds.add_parser(
        "base",
        help="may the owner's uploads (KakaoTalk exports, recordings) teach the shared text and voice "
        "bases, redacted (off unless granted)",
    )
    base.add_argument("--owner", required=True, help="the platform user who owns the data")
    choice = base.add_mutually_exclusive_group()
    choice.add_argument("--grant", action="store_true", help="allow it from the next base on")
    choice.add_argument("--revoke", action="store_true", help="withdraw it: the next base leaves it out")
    base.add_argument("--lake", default=None, help="lake URL (default: REMEMBERME_LAKE_URL or file://./data)")
    base.add_argument("--json", action="store_true", help="print one JSON object")


def cmd_consent(args: argparse.Namespace, settings: Settings) -> int:
    """Show, grant or revoke an owner's base-training opt-in."""
    from tasks.trust.consent import base_opt_in, set_base_opt_in

    storage = open_storage(settings.lake_url)
    owner = validate_owner(args.owner)
    if args.grant or args.revoke:
        set_base_opt_in(storage, owner, bool(args.grant))
    allowed = base_opt_in(storage, owner)
    if args.json:
        print(json.dumps({"owner_id": owner, "base_training": allowed}))
    else:
        state = "may" if allowed else "may not"
        print(f"{owner}: uploads {state} teach the shared bases (redacted)")
    return 0


COMMANDS = {"consent": cmd_consent}
