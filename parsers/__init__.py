"""Source bytes/text to canonical Message rows. Pure: no Prefect, no lake I/O."""
