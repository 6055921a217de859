"""The Prefect UI shows our deployments, a run triggered over the REST API, and its artifacts.

A real `prefect server start`, a real `rememberme serve` runner, a flow run created with the same
REST call the README documents, and headless Debian Chromium (Selenium + chromedriver) reading
the pages. Screenshots go to `test-output/ui/` (or `$REMEMBERME_TEST_OUTPUT/ui/`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.services import LocalPrefectServer, free_port
from parsers.kakao.render import render_export
from parsers.kakao.synth import conversation

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def _api(base: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        f"{base}{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    for attempt in range(10):
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            # SQLite under a busy local server answers 503 now and then: a client retries.
            if exc.code != 503 or attempt == 9:
                raise
            time.sleep(0.5 * (attempt + 1))
    return None


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[LocalPrefectServer, dict[str, str]]]:
    server = LocalPrefectServer(tmp_path / "prefect", free_port())
    server.start()
    env = {**server.environment(), "REMEMBERME_LAKE_URL": f"file://{tmp_path}/lake"}
    runner = subprocess.Popen(
        [str(Path(sys.executable).with_name("rememberme")), "serve"],
        env=env,
        cwd=tmp_path,
        stdout=(tmp_path / "serve.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        yield server, env
    finally:
        runner.terminate()
        try:
            runner.wait(timeout=20)
        except subprocess.TimeoutExpired:
            runner.kill()
        server.stop()


def _on_demand(server: LocalPrefectServer, deadline: float) -> dict[str, Any]:
    """The `instant-restore/on-demand` deployment, once `rememberme serve` has registered it."""
    while time.monotonic() < deadline:
        try:
            found: dict[str, Any] = _api(server.api_url, "GET", "/deployments/name/instant-restore/on-demand")
            return found
        except OSError:
            time.sleep(0.5)
    raise AssertionError("rememberme serve did not register its deployments")


def _browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(arg)
    options.add_argument("--disable-dev-shm-usage")
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def _page_text(driver: Any, url: str, expected: list[str], shot: Path) -> str:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    try:
        WebDriverWait(driver, 60).until(
            lambda d: all(e in d.find_element("tag name", "body").text for e in expected)
        )
    finally:
        driver.save_screenshot(str(shot))
    return str(driver.find_element("tag name", "body").text)


@pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="Debian chromium and chromium-driver are not installed (make test installs them)",
)
def test_ui_shows_deployments_a_rest_triggered_run_and_its_artifacts(served, tmp_path: Path) -> None:
    server, _ = served
    # What the UI shows does not depend on the upload's size: a few hundred lines, not the sample's 3,000.
    upload = tmp_path / "upload.txt"
    lines = conversation(400, seed=3, persona="엄마", user="민수")
    upload.write_text(render_export("android_ko", lines), encoding="utf-8")
    deadline = time.monotonic() + 90
    deployment = _on_demand(server, deadline)

    # The README's curl, as Python: create a run of the deployment with parameters.
    run = _api(
        server.api_url,
        "POST",
        f"/deployments/{deployment['id']}/create_flow_run",
        {
            "parameters": {
                "owner_id": "ui-owner",
                "persona": "엄마",
                "sources": [str(upload)],
                "index": False,
                "train_steps": 20,
            }
        },
    )
    state = None
    while time.monotonic() < deadline + 120:
        state = _api(server.api_url, "GET", f"/flow_runs/{run['id']}")["state"]["type"]
        if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            break
        time.sleep(1)
    assert state == "COMPLETED"

    out = Path(os.environ.get("REMEMBERME_TEST_OUTPUT", ROOT / "test-output")) / "ui"
    out.mkdir(parents=True, exist_ok=True)
    driver = _browser()
    try:
        deployments = _page_text(
            driver,
            f"{server.url}/deployments",
            ["on-demand", "nightly", "on-request"],
            out / "deployments.png",
        )
        assert "At 03:00 AM every day" in deployments
        run_page = _page_text(
            driver,
            f"{server.url}/runs/flow-run/{run['id']}",
            [run["name"], "Completed", "instant-restore"],
            out / "flow-run.png",
        )
        assert "on-demand" in run_page
        artifacts = _page_text(
            driver, f"{server.url}/artifacts", ["ingest-ui-owner", "quality-ui-owner"], out / "artifacts.png"
        )
        assert "restore-ui-owner" in artifacts and "model-card-ui-owner" in artifacts
        found = _api(
            server.api_url, "POST", "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run["id"]]}}}
        )
        curve = next(a for a in found if (a.get("key") or "").startswith("curve-ui-owner"))
        page = _page_text(
            driver,
            f"{server.url}/artifacts/artifact/{curve['id']}",
            ["train loss"],
            out / "training-curve.png",
        )
        assert "validation loss" in page
        assert driver.find_elements("css selector", "img[src^='data:image/svg+xml']")  # the curve picture
    finally:
        driver.quit()
    assert (out / "flow-run.png").stat().st_size > 10_000


def _whatsapp_and_sms(folder: Path) -> tuple[Path, Path]:
    """The same mother in a WhatsApp export (as `Mom`) and an SMS backup (as `엄마`).

    The WhatsApp dates never pass 12 and carry AM/PM, so the file alone reads them month first:
    `03/02/22` is March 2nd unless the run says `dmy`.
    """
    chat, backup = folder / "whatsapp.txt", folder / "backup.xml"
    lines = []
    for i in range(80):
        who, text = (
            ("Mom", f"밥은 먹었니 오늘은 뭐 했어 {i}") if i % 2 == 0 else ("Minsu", f"네 먹었어요 엄마 {i}")
        )
        lines.append(f"03/02/22, {1 + i // 8 % 11}:{10 + i % 8 * 5:02d} PM - {who}: {text}\n")
    chat.write_text("".join(lines), encoding="utf-8")
    with backup.open("w", encoding="utf-8") as handle:
        handle.write("<?xml version='1.0' encoding='UTF-8'?>\n<smses count=\"80\">\n")
        for i in range(80):
            body = f"응 조심히 다녀와 {i}" if i % 2 == 0 else f"네 지금 출발해요 {i}"
            stamp = 1_704_067_200_000 + i * 60_000
            handle.write(
                f'  <sms address="01012345678" date="{stamp}" type="{1 + i % 2}" body="{body}" contact_name="엄마" />\n'
            )
        handle.write("</smses>\n")
    return chat, backup


def test_a_rest_triggered_restore_mixes_whatsapp_and_sms_and_takes_a_date_order(
    served, tmp_path: Path
) -> None:
    """What the platform backend sends: two sources of one mother, her second name, and how dates read."""
    from infra.storage import open_storage
    from tasks.ingest.lake import load_message_table

    server, env = served
    chat, backup = _whatsapp_and_sms(tmp_path)
    deadline = time.monotonic() + 90
    deployment = _on_demand(server, deadline)
    parameters = {"owner_id": "mixed", "persona": "Mom", "aliases": ["엄마"], "sources": [str(chat), str(backup)],
                  "date_order": "dmy", "index": False, "train": False, "voice": False, "min_pairs": 5}  # fmt: skip
    run = _api(
        server.api_url, "POST", f"/deployments/{deployment['id']}/create_flow_run", {"parameters": parameters}
    )
    state = None
    while time.monotonic() < deadline + 240:
        state = _api(server.api_url, "GET", f"/flow_runs/{run['id']}")["state"]["type"]
        if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            break
        time.sleep(1)
    assert state == "COMPLETED", (tmp_path / "serve.log").read_text(errors="replace")[-3000:]
    table = load_message_table(open_storage(env["REMEMBERME_LAKE_URL"]), "mixed").to_pylist()
    whatsapp = [r for r in table if r["source"] == "whatsapp_txt"]
    assert {(r["ts"].month, r["ts"].day) for r in whatsapp} == {(2, 3)}  # day first, as the run said
    assert {r["source"] for r in table} == {"whatsapp_txt", "android_sms_xml"} and len(table) == 160
    artifacts = _api(
        server.api_url, "POST", "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run["id"]]}}}
    )
    assert any((a.get("key") or "").startswith("restore-mixed") for a in artifacts)
