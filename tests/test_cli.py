"""The command line: output, one-line errors (exact texts), exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from flows.cli import main
from flows.cli_docs import command_tree


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_parse_prints_a_readable_view(capsys, golden: Path) -> None:
    code, out, err = run(capsys, "parse", str(golden / "android_en.txt"))
    assert code == 0 and err == ""
    assert out.splitlines()[:2] == [
        "2018-03-03 00:52 [text] Kim: Did you eat?",
        "2018-03-03 20:54 [text] 김철수: Yes : rice and soup",
    ]
    assert "2018-03-03 20:57 [system] *: Lee joined this chatroom." in out


def test_parse_jsonl_has_the_canonical_fields(capsys, golden: Path) -> None:
    code, out, _ = run(capsys, "parse", str(golden / "pc_ko.txt"), "--jsonl")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == 20
    first = rows[0]
    assert first["ts"] == "2024-03-01T00:47:00+09:00"
    assert {k: first[k] for k in ("speaker", "text", "kind", "line_no", "source")} == {
        "speaker": "엄마",
        "text": "자니?",
        "kind": "text",
        "line_no": 5,
        "source": "kakao_pc_txt",
    }
    assert set(first) >= {"message_id", "conversation_id", "owner_id"}


def test_parse_reads_local_times_in_the_given_zone(capsys, golden: Path) -> None:
    _, out, _ = run(capsys, "parse", str(golden / "pc_ko.txt"), "--jsonl", "--tz", "Europe/Berlin")
    assert json.loads(out.splitlines()[0])["ts"] == "2024-03-01T00:47:00+01:00"


def test_forced_format_overrides_detection(capsys, golden: Path) -> None:
    code, _, err = run(capsys, "parse", str(golden / "pc_ko.txt"), "--format", "ios_ko")
    assert code == 0
    # Read as iOS, a Windows export has no messages: everything before is an unknown header.
    assert "unrecognised line before the first message" in err


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("make", "cause"),
    [
        (lambda d: d / "missing.txt", "no such file"),
        (lambda d: d, "is a directory, not an export file"),
        (lambda d: _write(d / "empty.txt", b""), "empty file"),
        (
            lambda d: _write(d / "bin.dat", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 10),
            "binary file, not a KakaoTalk text or CSV export",
        ),
        (
            lambda d: _write(d / "notes.txt", "장보기 목록\n두부\n".encode()),
            "not a recognised chat export (no known message layout in the first 3 lines; read are KakaoTalk, WhatsApp, SMS backups, Telegram, LINE, Messenger and Instagram: see `rememberme formats`)",
        ),
        (
            lambda d: _write(d / "latin.txt", b"\x80\x80\x80 caf\xe9\n"),
            "unknown text encoding (not UTF-8, UTF-16, CP949/EUC-KR or Windows-1252)",
        ),
        (
            lambda d: _write(d / "chat.zip", b"PK\x03\x04 not really a zip"),
            "corrupt zip archive (File is not a zip file)",
        ),
        (  # opening a FIFO blocks until a writer comes: it must be refused before that
            lambda d: _fifo(d / "pipe.txt"),
            "is not a regular file (a pipe, device or socket); save the export to a file and give that",
        ),
    ],
)
def test_bad_input_is_one_line_naming_the_file(capsys, tmp_path: Path, make, cause: str) -> None:
    target = make(tmp_path)
    for argv in (["parse", str(target)], ["ingest", str(target), "--owner", "alice"]):
        code, _, err = run(capsys, *argv)
        assert code == 1
        assert err == f"rememberme: error: {target}: {cause}\n"
    assert not (tmp_path / "data").exists()


def test_bad_owner_and_bad_zone_are_one_line(capsys, golden: Path) -> None:
    code, _, err = run(capsys, "ingest", str(golden / "pc_ko.txt"), "--owner", "../etc")
    assert (code, err) == (
        1,
        "rememberme: error: --owner: invalid owner id '../etc' (letters, digits, '_', '.', '-'; max 128)\n",
    )
    code, _, err = run(capsys, "parse", str(golden / "pc_ko.txt"), "--tz", "Mars/Base")
    assert (code, err) == (
        1,
        "rememberme: error: settings: kakao_timezone: unknown time zone 'Mars/Base' (use an IANA name such as Asia/Seoul)\n",
    )


def test_unsupported_lake_scheme_is_one_line(capsys, golden: Path) -> None:
    code, _, err = run(capsys, "ingest", str(golden / "pc_ko.txt"), "--owner", "a", "--lake", "s3://bucket/x")
    assert code == 1
    assert err == ("rememberme: error: unsupported lake URL 's3://bucket/x': use file:// or gs://\n")


def test_every_command_has_help_and_is_documented() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    tree = dict(command_tree())
    top = {path[0] for path in tree if len(path) == 1}
    assert top == {
        "parse", "ingest", "formats", "dataset", "services", "index", "search",
        "restore", "recycle", "forget", "landing", "serve", "server", "models", "chat", "train-base",
        "train-voice-base", "speak", "consent", "eval", "locks",
    }  # fmt: skip
    assert {path for path in tree if len(path) == 2} == {
        ("dataset", "build"), ("services", "up"), ("services", "down"), ("services", "status"),
        ("models", "list"), ("models", "show"), ("models", "promote"), ("models", "rollback"), ("consent", "base"),
    }  # fmt: skip
    for path, command in tree.items():
        if path:
            assert command.get_short_help_str(), (
                f"{' '.join(path)} has no one-line help in `rememberme --help`"
            )
    for name in top:
        assert f"rememberme {name}" in readme
    # A group's actions are documented as `rememberme group a|b|c` (or one line each).
    for group, action in (path for path in tree if len(path) == 2):
        documented = {
            a for listed in re.findall(rf"rememberme {group} ([a-z|-]+)", readme) for a in listed.split("|")
        }
        assert action in documented, f"`rememberme {group} {action}` is not in the README's command list"


def test_the_docs_cli_reference_is_the_app_itself() -> None:
    """The site's CLI reference is generated from the Typer app: every command, its usage, its options."""
    from flows.cli_docs import cli_reference

    page = cli_reference()
    for path, command in command_tree():
        if not path:
            continue
        name = " ".join(("rememberme", *path))
        assert f"## `{name}`" in page, f"`{name}` is missing from the CLI reference"
        for param in command.params:
            if param.name != "help" and param.opts[0].startswith("-"):
                assert f"`{param.opts[0]}`" in page, (
                    f"{name} {param.opts[0]} is missing from the CLI reference"
                )
    hook = (Path(__file__).parents[1] / "mkdocs.yml").read_text(encoding="utf-8")
    assert "docs/hooks/cli_reference.py" in hook and "reference/cli.md" in hook


@pytest.mark.parametrize(
    "path", [path for path, _ in command_tree()], ids=lambda p: " ".join(p) or "rememberme"
)
def test_every_command_renders_its_help(capsys, path: tuple[str, ...]) -> None:
    code, out, err = run(capsys, *path, "--help")
    assert (code, err) == (0, "")
    assert re.search(rf"Usage: rememberme {' '.join(path)}\s*\[OPTIONS\]", out), out
    if "--lake" in out:  # an environment-dependent default says where it comes from
        assert "$REMEMBERME_LAKE_URL" in out


def test_console_script_runs_in_a_fresh_process(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("rememberme")
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMEMBERME_")}
    proc = subprocess.run(
        [str(exe), "parse", str(tmp_path / "nope.txt")], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 1
    assert proc.stderr == f"rememberme: error: {tmp_path / 'nope.txt'}: no such file\n"
    assert "Traceback" not in proc.stderr


def test_parse_into_a_closed_pipe_is_not_an_error() -> None:
    exe = Path(sys.executable).with_name("rememberme")
    sample = Path(__file__).parents[1] / "samples" / "kakao_android_ko.txt"  # output > a pipe buffer
    proc = subprocess.run(
        f"'{exe}' parse '{sample}' | head -1", shell=True, capture_output=True, text=True, check=False
    )
    assert proc.stdout.count("\n") == 1
    assert "Traceback" not in proc.stderr and "Broken pipe" not in proc.stderr


def test_restore_refuses_a_missing_audio_file_before_running(tmp_path: Path, capsys) -> None:
    sample = Path(__file__).resolve().parents[1] / "samples" / "kakao_android_ko.txt"
    code = main(["restore", str(sample), "--owner", "o", "--persona", "엄마", "--audio", str(tmp_path / "nope.m4a"),
                 "--lake", f"file://{tmp_path}/lake"])  # fmt: skip
    assert code == 1
    assert capsys.readouterr().err == f"rememberme: error: {tmp_path / 'nope.m4a'}: no such audio file\n"
    assert not (tmp_path / "lake").exists()  # nothing written
