"""What a published persona says: the reply ranker (shared with the evaluation) and chat."""
