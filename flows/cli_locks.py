"""`rememberme locks [--free NAME]`: the persona locks in the lake, whose they are, and freeing a dead one."""

from typing import Annotated

import typer

from flows.cli_options import Json, Lake, settings
from flows.cli_output import emit_json


def register(app: typer.Typer) -> None:
    """Add this command to the CLI."""
    app.command(
        "locks", help="list the locks held in the lake (whose, since when, expired?); free an expired one"
    )(cmd_locks)


def cmd_locks(
    free: Annotated[
        str | None,
        typer.Option(
            "--free", metavar="NAME", help="remove this lock if its holder is gone (a live one is kept)"
        ),
    ] = None,
    lake: Lake = None,
    as_json: Json = False,
) -> None:
    """List the lake's locks, or free one whose lease has run out."""
    from datetime import UTC, datetime

    from infra.leases import free_expired, held
    from infra.storage import open_storage
    from parsers.errors import InputError

    storage = open_storage(settings(lake=lake).lake_url)
    if free is not None:
        if not free_expired(storage, free):
            raise InputError(
                free, "no such lock, or its holder is alive (it renews its lease): nothing freed"
            )
        if as_json:
            emit_json({"freed": free})
        else:
            print(f"freed {free}")
        return
    locks = held(storage)
    if as_json:
        emit_json({"locks": locks})
        return
    if not locks:
        print("no locks held")
    for lock in locks:
        since = lock["since"] and datetime.fromtimestamp(float(lock["since"]), UTC).isoformat(
            timespec="seconds"
        )
        state = "expired (free to take)" if lock["expired"] else "held"
        run = f" flow run {lock['run']}" if lock.get("run") else ""
        print(f"{lock['name']}: {state} by pid {lock['pid']} on {lock['host']}{run} since {since}")
