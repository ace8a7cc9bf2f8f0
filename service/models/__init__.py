"""The served model: loading and verifying a version, holding it, following `latest`."""
