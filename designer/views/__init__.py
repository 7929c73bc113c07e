"""Designer views, one module per page family: canvas, catalog, asyncapi."""
