"""Voice: audio decoding, transcripts, utterance datasets and voice models."""
