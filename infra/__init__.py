"""Settings, storage, and the local services that stand in for the cloud."""
