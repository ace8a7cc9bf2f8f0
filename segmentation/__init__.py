"""Core shared by training and the service: features, artifact format and scoring arithmetic."""
