"""``pyconvex dashboard``: a new one-time sign-in link to the running deployment's dashboard."""

from __future__ import annotations

from pyconvex.cli.admin_command import AdminKeyOption, UrlOption, admin_client, reported_failures


def dashboard(url: UrlOption = None, admin_key: AdminKeyOption = None) -> None:
    """Print a new sign-in link to the dashboard (each link signs one browser in, once).

    `pyconvex dev` prints one when it starts; this makes another, for a second browser or after
    the first was used."""
    with reported_failures():
        link = admin_client(url, admin_key).dashboard_link()
    print(link)
