"""What a Prefect run shows: artifacts, Markdown reports, one-line logs, fan-out, retry ledger."""
