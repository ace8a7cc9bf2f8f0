"""Offline training job: from a customer export to a named, versioned, verified model."""
