"""The HTTP layer: the app, its routes and middleware, error mapping and responses."""
