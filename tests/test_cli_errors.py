"""One error style and three exit codes for every command: 1 bad input, 2 usage, 3 a service unavailable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flows.cli import main
from flows.cli_errors import BAD_INPUT, UNAVAILABLE, USAGE, CliError, handle
from infra.errors import SearchUnavailableError, StorageError
from infra.leases import LeaseTimeoutError
from infra.registry import RegistryBusyError, RegistryError
from infra.services import ServiceError, free_port
from parsers.errors import InputError

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "kakao_android_ko.txt"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["parse", "--bogus", str(SAMPLE)], "No such option"),
        (["ingest", str(SAMPLE)], "Missing option '--owner'."),
        (["parse"], "Missing argument 'EXPORT'."),
        (["parse", str(SAMPLE), "--format", "nope"], "Invalid value for '--format'"),
        (["search", "q", "--owner", "a", "--mode", "fuzzy"], "Invalid value for '--mode'"),
        (["recycle", "--as-of", "yesterday"], "Invalid value for '--as-of'"),
        (
            ["dataset", "build", "--owner", "a", "--persona", "b", "--validation", "1"],
            "must be at least 0 and below 1",
        ),
        (
            ["consent", "base", "--owner", "a", "--grant", "--revoke"],
            "'--grant' / '--revoke': they exclude each other",
        ),
        (["nonsense"], "No such command 'nonsense'."),
        (["models"], "missing command"),
    ],
)
def test_usage_errors_exit_2_with_our_prefix_and_clicks_hint(capsys, argv: list[str], message: str) -> None:
    code, _, err = run(capsys, *argv)
    assert code == USAGE == 2
    first, *rest = err.splitlines()
    assert (
        first.startswith("rememberme: error: ")
        and message in first
        and ("--bogus" in first) == ("--bogus" in argv)
    )
    assert rest[0].startswith("Usage: rememberme ") and rest[-1].endswith("--help' for help.")


def test_bad_input_exits_1_in_one_line(capsys, tmp_path: Path) -> None:
    code, _, err = run(capsys, "parse", str(tmp_path / "nope.txt"))
    assert (code, err) == (1, f"rememberme: error: {tmp_path / 'nope.txt'}: no such file\n")
    code, _, err = run(capsys, "consent", "base", "--owner", "../x", "--lake", f"file://{tmp_path}/lake")
    assert (code, err) == (
        1,
        "rememberme: error: --owner: invalid owner id '../x' (letters, digits, '_', '.', '-'; max 128)\n",
    )
    code, _, err = run(capsys, "forget", "--owner", "a")
    assert (code, err) == (
        1,
        "rememberme: error: forget: deleting data cannot be undone: add --yes to confirm\n",
    )


@pytest.mark.parametrize("folder_flag", [("train-base", "--from-hf"), ("train-voice-base", "--from")])
def test_a_model_folder_without_config_is_bad_input(
    capsys, tmp_path: Path, folder_flag: tuple[str, str]
) -> None:
    code, _, err = run(capsys, *folder_flag, str(tmp_path))
    assert code == BAD_INPUT
    assert err.startswith(f"rememberme: error: {tmp_path}: not a ") and err.endswith("(no config.json)\n")


def _cli(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("rememberme")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REMEMBERME_")}
    return subprocess.run(
        [str(exe), *argv], capture_output=True, text=True, env={**clean, **env}, check=False, timeout=120
    )


@pytest.mark.parametrize("command", ["search", "index"])
def test_an_unreachable_search_server_exits_3(tmp_path: Path, command: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    argv = ["search", "--owner", "carol", "자니"] if command == "search" else ["index", "--owner", "carol"]
    proc = _cli(*argv, REMEMBERME_ES_URL=url, REMEMBERME_LAKE_URL=f"file://{tmp_path}/lake")
    assert proc.returncode == UNAVAILABLE == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"rememberme: error: Elasticsearch at {url} is unreachable (")
    assert "rememberme services up" in proc.stderr and proc.stderr.count("\n") == 1


def test_console_script_usage_error_has_no_traceback() -> None:
    proc = _cli("ingest", str(SAMPLE), "--owner", "a", "--bogus")
    assert proc.returncode == 2
    assert (
        proc.stderr.startswith("rememberme: error: No such option: --bogus")
        and "Traceback" not in proc.stderr
    )


@pytest.mark.parametrize(
    ("exc", "code", "line"),
    [
        (InputError("x.txt", "empty file"), 1, "x.txt: empty file"),
        (StorageError("unsupported lake URL 's3://b': use file:// or gs://"), 1, "unsupported lake URL"),
        (RegistryError("no published text model for o/p"), 1, "no published text model for o/p"),
        (FileNotFoundError(2, "No such file or directory", "a.wav"), 1, "a.wav: No such file or directory"),
        (CliError("two flags", USAGE), 2, "two flags"),
        (SearchUnavailableError("Elasticsearch at http://h:9 is unreachable (ConnectionError)"), 3,
         "Elasticsearch at http://h:9 is unreachable (ConnectionError; run `rememberme services up`"),
        (LeaseTimeoutError("persona o/p is held by another run; try again when it has finished"), 3, "held by"),
        (RegistryBusyError("aliases of o/p kept changing"), 3, "kept changing (other commands"),
        (ServiceError("noida-db is not installed (pip install noida-db)"), 3, "noida-db is not installed"),
        (ConnectionRefusedError(111, "Connection refused"), 3, "a service did not answer"),
        (RuntimeError("Failed to reach API at http://127.0.0.1:9/api/"), 3, "unset PREFECT_API_URL"),
    ],
)  # fmt: skip
def test_every_error_class_has_its_code_and_one_line(capsys, exc: Exception, code: int, line: str) -> None:
    assert handle(exc) == code
    err = capsys.readouterr().err
    assert err.startswith("rememberme: error: ") and line in err and err.count("\n") == 1


def test_an_unknown_error_is_a_bug_and_keeps_its_traceback() -> None:
    with pytest.raises(ZeroDivisionError):
        handle(ZeroDivisionError("division by zero"))
