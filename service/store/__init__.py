"""The customer store: latest assignment per customer and the full history, in SQL."""
