"""The data contracts: Message and quarantine schemas (later: turns, voice, manifests, GX suites)."""
