"""End-to-end user journeys: what a newcomer does in the first ten minutes, in real Chromium."""

import uuid

# Streams of the dead-letter journey start with this; the world app's ingester reads only theirs.
STREAM_PREFIX = f"e2e-{uuid.uuid4().hex[:8]}"
