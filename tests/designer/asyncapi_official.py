"""The official AsyncAPI 3.0.0 JSON Schema for tests, fetched once with npm into var/.

The schema ships in the npm package @asyncapi/specs. It is not committed: the
first test run packs the pinned version into var/asyncapi-specs/ (gitignored),
checks the tarball against the registry's published integrity, and keeps the
one file the tests need. Later runs read the cached copy.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from jsonschema.exceptions import best_match, relevance

SPECS_PACKAGE = "@asyncapi/specs"
SPECS_VERSION = "6.11.1"
# `npm view @asyncapi/specs@6.11.1 dist.integrity`
SPECS_INTEGRITY = "sha512-A3WBLqAKGoJ2+6FWFtpjBlCQ1oFCcs4GxF7zsIGvNqp/klGUHjlA3aAcZ9XMMpLGE8zPeYDz2x9FmO6DSuKraQ=="
# The same schema as 3.0.0.json with the $id URIs removed: plain $refs, faster to validate.
SCHEMA_MEMBER = "package/schemas/3.0.0-without-$id.json"

REPO = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO / "var" / "asyncapi-specs" / SPECS_VERSION


def _fail(why: str) -> None:
    pytest.fail(
        f"Cannot get the official AsyncAPI 3.0.0 JSON Schema ({SPECS_PACKAGE}@{SPECS_VERSION}): {why}. "
        f"The tests fetch it once with `npm pack {SPECS_PACKAGE}@{SPECS_VERSION}` into {CACHE_DIR}; "
        "run them once with access to the npm registry.",
        pytrace=False,
    )


def schema_path() -> Path:
    target = CACHE_DIR / "3.0.0-without-$id.json"
    if target.exists():
        return target
    npm = shutil.which("npm")
    if npm is None:
        _fail("npm is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            done = subprocess.run(
                [npm, "pack", f"{SPECS_PACKAGE}@{SPECS_VERSION}", "--json", "--pack-destination", tmp],
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
        except subprocess.TimeoutExpired:
            _fail("npm pack took more than 3 minutes")
        if done.returncode != 0:
            _fail(f"npm pack exited with {done.returncode}: {done.stderr.strip()[-500:]}")
        tarball = Path(tmp) / json.loads(done.stdout)[0]["filename"]
        digest = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
        if digest != SPECS_INTEGRITY:
            _fail(f"the tarball's integrity is {digest}, expected {SPECS_INTEGRITY}")
        with tarfile.open(tarball) as archive:
            member = archive.extractfile(SCHEMA_MEMBER)
            if member is None:
                _fail(f"{SCHEMA_MEMBER} is not in the package")
            data = member.read()
        json.loads(data)  # a readable schema, or fail here rather than in every test
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        partial = CACHE_DIR / f".3.0.0.json.{os.getpid()}"
        partial.write_bytes(data)
        os.replace(partial, target)  # atomic: a parallel run never reads half a file
    return target


@cache
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema)


def errors(document: Any) -> list[str]:
    """The document's violations of the official schema, most relevant first."""
    found = list(validator().iter_errors(document))
    if not found:
        return []
    ordered = [best_match(found), *sorted(found, key=relevance, reverse=True)]
    return [f"#/{'/'.join(str(p) for p in e.absolute_path)}: {e.message[:300]}" for e in ordered]


def assert_valid(document: Any) -> None:
    problems = errors(document)
    if problems:
        pytest.fail("Not valid against the official AsyncAPI 3.0.0 schema:\n" + "\n".join(problems[:10]))
