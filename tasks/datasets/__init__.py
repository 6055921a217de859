"""From an owner's messages to a versioned, quality-gated dataset: cleaning, gates, turns, pairs."""
