"""Prefect flows and the `rememberme` command line: wiring only."""
