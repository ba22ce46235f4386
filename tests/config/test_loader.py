"""Config loading: every kind of mistake is reported with its key path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ilyd.config import SecretKind, load_config
from ilyd.errors import ConfigError

from .conftest import GOOD_ORG

WriteConfig = Callable[[str], Path]


def org_problems(write_config: WriteConfig, text: str) -> list[str]:
    config = load_config(write_config(text))
    return list(config.problems())


def global_problems(write_config: WriteConfig, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write_config(text))
    return info.value.problems


def test_valid_config_loads_with_defaults_inherited(write_config, secret_file):
    config = load_config(write_config("[defaults]\nworkers = 7\n" + GOOD_ORG))
    (org,) = config.orgs
    assert org.name == "acme"
    assert org.login_url == "https://acme.my.salesforce.com"
    assert org.workers == 7
    assert org.objects == ("Account", "Lead")
    assert org.client_secret is not None
    assert org.client_secret.kind is SecretKind.FILE
    assert org.client_secret.read() == "s3cret-value"
    assert config.metrics.listen == ("127.0.0.1", 9464)
    assert config.org_errors == ()


def test_org_setting_overrides_defaults(write_config, secret_file):
    config = load_config(write_config("[defaults]\nworkers = 7\n" + GOOD_ORG + "workers = 2\n"))
    assert config.orgs[0].workers == 2


def test_misspelled_key_suggests_the_closest_one(write_config, secret_file):
    problems = org_problems(write_config, GOOD_ORG + 'client_secert = "x"\n')
    assert problems == ["org[0].client_secert: unknown key (did you mean client_secret_file?)"]


def test_inline_client_secret_is_rejected_with_the_fix(write_config, secret_file):
    problems = org_problems(write_config, GOOD_ORG + 'client_secret = "abc"\n')
    assert len(problems) == 1
    assert problems[0].startswith("org[0].client_secret: secrets are never written inline")
    assert "client_secret_file" in problems[0]
    assert "abc" not in problems[0]


def test_duplicate_org_names_are_reported_on_the_second(write_config, secret_file):
    config = load_config(write_config(GOOD_ORG + GOOD_ORG))
    assert [o.name for o in config.orgs] == ["acme"]
    assert config.problems() == (
        "org[1].name: duplicate of org[0].name 'acme'; org names must be unique",
    )
    assert config.org_errors[0].name == "org[1]"


def test_plain_http_login_url_is_refused_off_loopback(write_config, secret_file):
    text = GOOD_ORG.replace('"https://acme.my.salesforce.com"', '"http://login.example.com"')
    (problem,) = org_problems(write_config, text)
    assert problem.startswith("org[0].environment: must use https://")


def test_plain_http_login_url_is_allowed_on_loopback(write_config, secret_file):
    text = GOOD_ORG.replace('"https://acme.my.salesforce.com"', '"http://127.0.0.1:8443"')
    assert load_config(write_config(text)).orgs[0].login_url == "http://127.0.0.1:8443"


def test_malformed_url_is_reported(write_config, secret_file):
    text = GOOD_ORG.replace('"https://acme.my.salesforce.com"', '"login.salesforce.com"')
    (problem,) = org_problems(write_config, text)
    assert problem.startswith("org[0].environment: must be 'production', 'sandbox' or a login URL")


def test_missing_secret_file_is_reported(write_config, secret_file):
    secret_file.unlink()
    (problem,) = org_problems(write_config, GOOD_ORG)
    assert problem.startswith("org[0].client_secret_file: secret file ")
    assert "does not exist" in problem


def test_world_readable_secret_file_is_reported(write_config, secret_file):
    secret_file.chmod(0o644)
    (problem,) = org_problems(write_config, GOOD_ORG)
    assert problem.startswith("org[0].client_secret_file: secret file ")
    assert "world-readable (mode 0644)" in problem


def test_unreadable_secret_file_is_reported(write_config, secret_file, tmp_path):
    secret_file.unlink()
    secret_file.mkdir()
    (problem,) = org_problems(write_config, GOOD_ORG)
    assert problem.startswith("org[0].client_secret_file: ")
    assert "is not a regular file" in problem


def test_unset_secret_env_is_reported(write_config, monkeypatch):
    monkeypatch.delenv("ILYD_TEST_UNSET_SECRET", raising=False)
    text = GOOD_ORG.replace('client_secret_file = "client.secret"',
                            'client_secret_env = "ILYD_TEST_UNSET_SECRET"')
    (problem,) = org_problems(write_config, text)
    assert problem.startswith("org[0].client_secret_env: environment variable ILYD_TEST_UNSET")


def test_two_references_to_one_secret_are_refused(write_config, secret_file, monkeypatch):
    monkeypatch.setenv("ILYD_TEST_SECRET", "x")
    problems = org_problems(write_config, GOOD_ORG + 'client_secret_env = "ILYD_TEST_SECRET"\n')
    assert "org[0]: set only one of client_secret_file, client_secret_env" in problems


def test_auth_method_requirements_are_checked(write_config, secret_file):
    text = GOOD_ORG.replace('"client_credentials"', '"password"')
    problems = org_problems(write_config, text)
    assert "org[0].username: required when auth = 'password'" in problems
    needs = "org[0]: auth = 'password' needs one of password_file"
    assert any(p.startswith(needs) for p in problems)


def test_wrong_types_and_ranges_are_reported(write_config, secret_file):
    problems = org_problems(write_config, GOOD_ORG + 'workers = "many"\napi_budget_ratio = 3\n'
                            'objects = ["Contact"]\n')
    assert "org[0].workers: must be an integer (got a string)" in problems
    assert "org[0].api_budget_ratio: must be at most 1.0 (got 3)" in problems
    assert any(p.startswith("org[0].objects: unsupported value(s) 'Contact'") for p in problems)


def test_missing_required_key_is_reported(write_config, secret_file):
    (problem,) = org_problems(write_config, GOOD_ORG.replace('client_id = "3MVG9-client"', ""))
    assert problem == "org[0].client_id: missing required key"


def test_bad_org_name_disables_only_that_org(write_config, secret_file):
    config = load_config(write_config(GOOD_ORG + GOOD_ORG.replace('"acme"', '"Bad Name"')))
    assert [o.name for o in config.orgs] == ["acme"]
    assert config.org_errors[0].name == "org[1]"
    assert config.problems()[0].startswith("org[1].name: must be a slug")


def test_every_problem_in_the_file_is_reported_at_once(write_config, secret_file):
    problems = global_problems(
        write_config,
        '[daemon]\nlog_levle = "info"\nlog_format = "xml"\n[metrics]\nlisten = "0.0.0.0:9"\n'
        "[deamon]\n",
    )
    assert problems == [
        "deamon: unknown key (did you mean daemon?)",
        "daemon.log_levle: unknown key (did you mean log_level?)",
        "daemon.log_format: must be one of 'auto', 'json', 'console' (got 'xml')",
        "metrics.listen: 0.0.0.0 is not a loopback address; metrics carry org names, so bind"
        " 127.0.0.1 and scrape through a proxy, or set allow_remote = true",
    ]


def test_single_org_table_is_refused_with_the_fix(write_config):
    problems = global_problems(write_config, '[org]\nname = "x"\n')
    assert problems == ["org: must be an array of tables: write each org as [[org]]"]


def test_toml_syntax_error_names_file_line_and_column(write_config):
    path = write_config('[daemon]\nlog_level = "info"\nstate_dir = \n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}:3:13: TOML syntax error: Invalid value")


def test_missing_config_file_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "absent.toml")


def test_paths_default_to_systemd_directories(write_config, monkeypatch, tmp_path):
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path / "run"))
    config = load_config(write_config(""))
    assert config.daemon.state_dir == tmp_path / "state"
    assert config.daemon.control_socket == tmp_path / "run" / "control.sock"


def test_paths_default_to_var_next_to_the_config_file_without_systemd(
        write_config, monkeypatch, tmp_path):
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    path = write_config("")
    monkeypatch.chdir("/")
    config = load_config(path)
    assert config.daemon.state_dir == tmp_path.resolve() / "var" / "state"
    assert config.daemon.control_socket == tmp_path.resolve() / "var" / "run" / "control.sock"


def test_refresh_token_defaults_to_the_token_ilyd_connect_stores(write_config, tmp_path):
    text = f'[daemon]\nstate_dir = "{tmp_path}/st"\n[[org]]\nname = "a"\nclient_id = "c"\n'
    (org,) = load_config(write_config(text)).orgs
    assert org.refresh_token is not None
    assert org.refresh_token.location == f"{tmp_path}/st/tokens/a.refresh_token"


def test_shipped_example_config_is_valid(monkeypatch):
    monkeypatch.setenv("ILYD_DEVORG_CLIENT_SECRET", "x")
    monkeypatch.setenv("ILYD_DEVORG_PASSWORD", "x")
    example = Path(__file__).parents[2] / "config" / "ilyd.toml"
    config = load_config(example)
    assert config.problems() == ()
    assert len(config.orgs) >= 1
