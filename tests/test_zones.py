"""The trust boundary end to end: planted personal data never leaves its owner's source of truth.

Owner A's upload carries personal values (phones in several spellings, 주민등록번호, Luhn cards,
bank accounts, e-mails, addresses) said by both speakers. A and another owner B are restored,
the shared base is pretrained (both opted in, so A's redacted words teach it), B is restored again
from that base, and then every file under the lake, the local search server's data folder,
Prefect's home and the working folder is scanned, decoded where it can be (Parquet, JSON, base64
pickles of Prefect results): no planted value may sit anywhere but A's `raw/`, `messages/` and
`quarantine/`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from infra.storage import open_storage
from tasks.trust.consent import set_base_opt_in
from tests.scan_support import find_values

# Values of owner A's only (the bundled sample, which B uploads, has personal numbers of its own).
PLANTED = [
    ("새 번호 010-4821-3377 저장해", "010-4821-3377"),
    ("급하면 01048213377로 전화해", "01048213377"),
    ("해외에선 +82 10-4821-3377 로 걸어", "+82 10-4821-3377"),
    ("집 전화는 02-987-6543 이야", "02-987-6543"),
    ("이모 번호 031 654 9870", "031 654 9870"),
    ("주민번호 850315-2345678 맞지?", "850315-2345678"),
    ("카드번호 4539 1488 0343 6467 불러줄게", "4539 1488 0343 6467"),
    ("이 카드 5105-1051-0510-5100 써", "5105-1051-0510-5100"),
    ("국민은행 654321-09-876543 로 보내", "654321-09-876543"),
    ("신한 110-987-654321 이야", "110-987-654321"),
    ("카카오뱅크 3333098765432 으로 입금해줘", "3333098765432"),
    ("메일은 grandma.lee+home@example.org 로 보내", "grandma.lee+home@example.org"),
    ("주소는 서울특별시 마포구 월드컵북로 396, 3동 201호 야", "월드컵북로 396"),
    ("옛날 집 연남동 239-12번지 기억나?", "239-12번지"),
]

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api")]
SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "kakao_android_ko.txt"


def _export_with_planted_values(path: Path) -> list[str]:
    """The sample export plus a day on which mom and her son say every planted sentence."""
    lines = ["", "2024년 6월 8일 오전 9:00"]
    minute = 0
    for round_ in range(3):
        for sentence, _ in PLANTED:
            for speaker in ("엄마", "나"):
                minute += 1
                hour, mins = divmod(minute, 60)
                lines.append(f"2024년 6월 8일 오후 {1 + hour}:{mins:02d}, {speaker} : {sentence} ({round_})")
    path.write_text(SAMPLE.read_text(encoding="utf-8-sig") + "\n".join(lines) + "\n", encoding="utf-8")
    return [value for _, value in PLANTED]


def test_no_planted_value_leaves_its_owners_source_of_truth(
    es_url: str, es_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.base import train_base
    from flows.restore import instant_restore

    monkeypatch.setenv("REMEMBERME_ES_URL", es_url)
    monkeypatch.setenv("REMEMBERME_TRAIN_MAX_STEPS", "20")
    lake_dir = tmp_path / "lake"
    lake = f"file://{lake_dir}"
    planted = _export_with_planted_values(tmp_path / "a-chat.txt")
    storage = open_storage(lake)
    set_base_opt_in(storage, "owner-a", True)  # A's (redacted) words may teach the base
    set_base_opt_in(storage, "owner-b", True)

    first = instant_restore("owner-a", "엄마", [str(tmp_path / "a-chat.txt")], lake_url=lake, vectors=False)
    manifest = json.loads(
        (lake_dir / first["dataset"]["prefix"] / "manifest.json").read_text(encoding="utf-8")
    )
    assert first["model"] and manifest["redactions"]["phone"] >= 30  # both speakers, three rounds
    instant_restore("owner-b", "엄마", [str(SAMPLE)], lake_url=lake, vectors=False)
    base = train_base(lake, steps=20)
    assert base["corpus"]["messages"] > 3000  # both owners' conversations
    again = instant_restore("owner-b", "엄마", [str(SAMPLE)], lake_url=lake, vectors=False)
    assert again["model"]["version"] == 2

    source_of_truth = [lake_dir / "raw" / "owner-a", lake_dir / "messages" / "owner=owner-a",
                       lake_dir / "quarantine" / "owner-a"]  # fmt: skip
    assert any(find_values(source_of_truth, planted)[1])  # the scan finds them where they belong
    roots = [lake_dir, es_data_dir, Path(os.environ["PREFECT_HOME"]), tmp_path / ".state"]
    scanned, found = find_values(roots, planted, allowed=source_of_truth)
    print(f"scanned {scanned} files, found {len(found)} planted values outside A's source of truth")
    assert scanned > 50
    assert found == []
