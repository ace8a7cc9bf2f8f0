"""The operations dashboard's view layer: panels built from the domain's answers, rendered
as HTML with Jinja2 and inline SVG (no HTTP here: the routes are in ``service.api``)."""
