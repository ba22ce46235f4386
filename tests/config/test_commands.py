"""`ilyd config check|show` exit codes and output."""

from __future__ import annotations

import tomllib

from ilyd.cli import main
from ilyd.config import load_config
from ilyd.config.show import config_data

from .conftest import GOOD_ORG


def test_config_check_prints_each_problem_and_exits_one(write_config, secret_file, capsys):
    path = write_config(GOOD_ORG + 'client_secert = "x"\nworkers = 0\n')
    assert main(["config", "check", "--config", str(path)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "org[0].client_secert: unknown key (did you mean client_secret_file?)",
        "org[0].workers: must be at least 1 (got 0)",
    ]


def test_config_check_accepts_a_valid_file(write_config, secret_file, capsys):
    path = write_config(GOOD_ORG)
    assert main(["config", "check", "--config", str(path)]) == 0
    assert "valid (1 org)" in capsys.readouterr().out


def test_config_show_masks_secrets(write_config, secret_file, capsys):
    path = write_config(GOOD_ORG)
    assert main(["config", "show", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "s3cret-value" not in out
    assert f'client_secret_file = "{secret_file}"' in out
    assert 'login_url = "https://acme.my.salesforce.com"' in out


def test_config_show_names_the_process_count_auto_gives(write_config, secret_file, capsys):
    path = write_config(GOOD_ORG)
    assert main(["config", "show", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert 'processes = "auto"\n' in out
    assert "# worker processes here: none" in out  # one org
    path = write_config('[daemon]\nprocesses = 3\n' + GOOD_ORG)
    assert main(["config", "show", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "processes = 3\n" in out
    assert "# worker processes here: 3" in out


def test_config_check_names_a_bad_process_count_with_its_key(write_config, capsys):
    path = write_config('[daemon]\nprocesses = 0\n')
    assert main(["config", "check", "--config", str(path)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "daemon.processes: must be at least 1 (got 0)"]


def test_config_check_reports_global_and_org_problems_in_one_run(write_config, secret_file,
                                                                 capsys):
    path = write_config('[daemon]\nlog_levle = "debug"\n'
                        + GOOD_ORG + 'client_secret = "inline"\n')
    assert main(["config", "check", "--config", str(path)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "daemon.log_levle: unknown key (did you mean log_level?)"
    assert lines[1].startswith("org[0].client_secret: secrets are never written inline")
    assert len(lines) == 2


def test_config_check_warns_that_an_org_is_not_connected_yet(write_config, tmp_path, capsys):
    path = write_config(f'[daemon]\nstate_dir = "{tmp_path}/st"\n'
                        '[[org]]\nname = "acme"\nclient_id = "c"\n')
    assert main(["config", "check", "--config", str(path)]) == 0
    captured = capsys.readouterr()
    connect, sample = captured.err.splitlines()
    assert connect == (
        f"warning: org[0].refresh_token_file: no refresh token at {tmp_path}/st/tokens/"
        f"acme.refresh_token yet: the org is not connected; run `ilyd connect acme"
        f" --config {path}`")
    # A production org with no provider of its own gets the sample, which it refuses.
    assert sample.startswith("warning: org acme: enrichment source:")
    assert "valid (1 org)" in captured.out


UNICODE_CONFIG = """
[metrics]
listen = "[::1]:9464"

[[defaults.enrich.provider]]
type = "http"
name = "vendor \U0001F984 \U00020BB7\u91ce\u5bb6"
url = "https://api.vendor.example/find"
method = "POST"
body = { domain = "{domain}", note = "\U0001F600", page = ["next", 2] }
fields = { Ily_Company_Name__c = "name" }

[[org]]
name = "acme"
environment = "sandbox"
auth = "password"
client_id = "3MVG9-\U0001D518nicode"
username = "zo\u00eb\U0001F984@example.com"
client_secret_file = "client.secret"
password_file = "client.secret"
"""


def test_config_show_loads_back_equal_to_the_effective_config_with_non_bmp_text(
        write_config, secret_file, capsys):
    config = load_config(write_config(UNICODE_CONFIG))
    assert main(["config", "show", "--config", str(config.path)]) == 0
    shown = tomllib.loads(capsys.readouterr().out)
    assert shown == config_data(config)
    (org,) = shown["org"]
    assert org["username"] == "zo\u00eb\U0001F984@example.com"
    assert org["client_id"] == "3MVG9-\U0001D518nicode"
    (provider,) = org["enrich"]["provider"]
    assert provider["name"] == "vendor \U0001F984 \U00020BB7\u91ce\u5bb6"
    assert provider["body"] == {"domain": "{domain}", "note": "\U0001F600",
                                "page": ["next", 2]}
    assert shown["metrics"]["listen"] == "[::1]:9464"
    assert org["password_file"] == str(secret_file)
    assert "s3cret-value" not in str(shown)


def test_config_show_prints_the_history_days_the_daemon_keeps(write_config, secret_file,
                                                               capsys):
    path = write_config('[defaults.enrich]\nhistory_days = 90\n' + GOOD_ORG)
    assert main(["config", "show", "--config", str(path)]) == 0
    shown = tomllib.loads(capsys.readouterr().out)
    assert shown["defaults"]["enrich"]["history_days"] == 90
    (org,) = shown["org"]
    assert org["enrich"]["history_days"] == 90


def test_a_missing_secret_file_is_to_be_created_readable_by_the_daemon_s_group(
        write_config, capsys):
    path = write_config(GOOD_ORG)
    assert main(["config", "check", "--config", str(path)]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("org[0].client_secret_file: secret file ")
    assert "does not exist" in line
    assert "0640" in line
