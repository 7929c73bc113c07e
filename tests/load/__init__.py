"""Load tests: many dashboards open while the bus is busy (see bench/load.py for the scenario)."""
