"""The canonical Message contract (DESIGN.md section 3) and the quarantine table beside it.

Every source (KakaoTalk exports, platform chat) ends up in these explicit pyarrow schemas; writers
take the schema from here so that Parquet parts never drift through type inference.
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa

#: Owner ids become storage prefixes and search filters: a plain token, nothing that could
#: escape a path or widen a query.
#: One vocabulary of message kinds for every source.
MESSAGE_KINDS: Final[tuple[str, ...]] = (
    "text",
    "photo",
    "video",
    "emoticon",
    "file",
    "voice",
    "call",
    "deleted",
    "hidden",
    "transfer",
    "search",
    "location",
    "contact",
    "system",
)

#: Kinds whose text is a placeholder, not words the person wrote (kept in the lake for memory,
#: left out of text training).
ATTACHMENT_KINDS: Final[tuple[str, ...]] = tuple(
    k for k in MESSAGE_KINDS if k not in ("text", "deleted", "hidden", "system")
)

#: Known `source` values (one per source family, independent of the UI language).
SOURCES: Final[tuple[str, ...]] = (
    "kakao_pc_txt",
    "kakao_mac_csv",
    "kakao_android_txt",
    "kakao_ios_txt",
    "platform_chat",
    "whatsapp_txt",
    "android_sms_xml",
    "telegram_json",
    "telegram_html",
    "messenger_json",
    "line_txt",
)

#: Timestamps are stored as UTC instants; the zone they were read in is a parse setting.
TS_TYPE: Final = pa.timestamp("us", tz="UTC")

MESSAGE_SCHEMA: Final[pa.Schema] = pa.schema(
    [
        pa.field("message_id", pa.string(), nullable=False),
        pa.field("owner_id", pa.string(), nullable=False),
        pa.field("conversation_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("ts", TS_TYPE, nullable=False),
        pa.field("speaker", pa.string(), nullable=True),
        pa.field("text", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("line_no", pa.int64(), nullable=False),
        # raw/ object of a media file that came with the export (zip), when one could be matched.
        pa.field("attachment", pa.string(), nullable=True),
    ],
    metadata={"contract": "rememberme.message.v1"},
)

QUARANTINE_SCHEMA: Final[pa.Schema] = pa.schema(
    [
        pa.field("owner_id", pa.string(), nullable=False),
        pa.field("upload_id", pa.string(), nullable=False),
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("line_no", pa.int64(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("raw", pa.string(), nullable=False),
    ],
    metadata={"contract": "rememberme.quarantine.v1"},
)
