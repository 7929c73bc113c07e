"""The event store's pages, one module per feature: events (the index and one event), traces,
flow checks, the topic browser, discovered schemas."""
