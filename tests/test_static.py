"""The files every page links (stylesheet, icon) are served, to anyone: the login page needs them too."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.django_db


def test_the_login_page_links_an_icon_and_a_stylesheet_that_are_served(client):
    page = client.get("/login/").content.decode()
    icon = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', page)
    stylesheet = re.search(r'<link rel="stylesheet" href="([^"]+base\.css)">', page)
    assert icon and stylesheet
    served = client.get(icon[1])
    assert served.status_code == 200
    assert b"<svg" in b"".join(served.streaming_content)
    assert client.get(stylesheet[1]).status_code == 200
