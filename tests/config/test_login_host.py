"""`config check` sends each OAuth grant where Salesforce serves it: client credentials
only to the org's My Domain."""

from __future__ import annotations

import pytest

from ilyd.cli import main

from .conftest import GOOD_ORG


@pytest.mark.parametrize("environment", ["production", "sandbox",
                                         "https://login.salesforce.com",
                                         "https://test.salesforce.com"])
def test_config_check_refuses_client_credentials_on_the_shared_login_host(
        write_config, secret_file, capsys, environment: str) -> None:
    text = GOOD_ORG.replace('"https://acme.my.salesforce.com"', f'"{environment}"')
    path = write_config(text)
    assert main(["config", "check", "--config", str(path)]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("org[0].environment: auth = 'client_credentials' cannot use")
    assert "My Domain URL" in line


@pytest.mark.parametrize("environment", ["production", "sandbox"])
def test_other_grants_may_use_the_login_host(write_config, secret_file, tmp_path,
                                             environment: str) -> None:
    key = tmp_path / "app.key"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    key.chmod(0o600)
    text = (GOOD_ORG.replace('"https://acme.my.salesforce.com"', f'"{environment}"')
            .replace('"client_credentials"', '"jwt"')
            + f'username = "i@acme.example"\nprivate_key_file = "{key}"\n')
    assert main(["config", "check", "--config", str(write_config(text))]) == 0
