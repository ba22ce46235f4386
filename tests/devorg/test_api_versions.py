"""devorg serves the API versions a current org serves, up to the current release."""

from __future__ import annotations

from ilyd.salesforce.versions import DEFAULT_API_VERSION

from .conftest import Client


def test_versions_run_up_to_the_current_release_and_include_ilyds_default(
        client: Client) -> None:
    listed = client.http.get(client.dev.url + "/services/data").json()
    assert listed[-1] == {"label": "Winter '27", "url": "/services/data/v68.0",
                          "version": "68.0"}
    assert DEFAULT_API_VERSION in {v["version"] for v in listed}
    assert client.http.get(client.dev.url + "/services/data/v68.0/limits").status_code == 200
    assert client.http.get(client.dev.url + "/services/data/v69.0/limits").status_code == 404
