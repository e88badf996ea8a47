"""Storage URLs: passwords hidden wherever mcunas writes or prints them, credentials from the
environment, SQLite refused for trials on Ray, a journal's torn last record repaired."""

from __future__ import annotations

import json

import optuna
import pytest
import yaml

from mcunas.cli import main as cli_main
from mcunas.config import parse_experiment
from mcunas.errors import ConfigError, RunDirError
from mcunas.estimators import load_board
from mcunas.report.load import load_run
from mcunas.rundir.runinfo import prepare_run_dir
from mcunas.rundir.storage import (PASSWORD_VARIABLE, check_storage_for, default_storage_url, open_storage,
                                   repair_journal, resolve_storage_url)
from mcunas.search.search import uses_ray, with_overrides
from mcunas.secrets import redact

BOARD = "arduino-nano-33-ble-sense"
URL = "postgresql+psycopg2://mcunas:S3cr%2Ft@db.example:5432/nas"


def experiment(**search):
    return parse_experiment({"name": "secret", "dataset": {"name": "synthetic", "resolution": 8},
                             "boards": [BOARD], "search": search})


@pytest.mark.parametrize("text, expected", [
    (URL, "postgresql+psycopg2://mcunas:***@db.example:5432/nas"),
    ("storage: 'mysql://u:p@ss@h/db' # note", "storage: 'mysql://u:***@h/db' # note"),
    ('{"storage": "postgresql://u:pw@h/db", "x": "a@b"}', '{"storage": "postgresql://u:***@h/db", "x": "a@b"}'),
    ("postgresql://h/db?user=u&password=pw&sslmode=require", "postgresql://h/db?user=u&password=***&sslmode=require"),
    ("postgresql://u@h/db and sqlite:////tmp/x.db", "postgresql://u@h/db and sqlite:////tmp/x.db"),
    ("${MCUNAS_STORAGE}", "${MCUNAS_STORAGE}"),
])
def test_redact_hides_passwords_in_urls_and_documents(text, expected):
    assert redact(text) == expected


def test_storage_url_names_environment_variables(monkeypatch):
    monkeypatch.setenv("MCUNAS_TEST_DB", URL)
    assert resolve_storage_url("${MCUNAS_TEST_DB}") == URL
    monkeypatch.delenv("MCUNAS_TEST_DB")
    with pytest.raises(ConfigError, match=r"search\.storage: \$\{MCUNAS_TEST_DB\} names the environment variable "
                                          r"MCUNAS_TEST_DB, which is not set"):
        resolve_storage_url("${MCUNAS_TEST_DB}")


def test_a_hidden_password_comes_from_the_documented_variable(monkeypatch):
    recorded = redact(URL)
    monkeypatch.delenv(PASSWORD_VARIABLE, raising=False)
    with pytest.raises(ConfigError) as error:
        resolve_storage_url(recorded)
    assert PASSWORD_VARIABLE in str(error.value) and "S3cr" not in str(error.value)
    monkeypatch.setenv(PASSWORD_VARIABLE, "S3cr/t")
    assert resolve_storage_url(recorded) == URL


def test_run_directory_files_record_the_url_without_its_password(tmp_path):
    run = prepare_run_dir(experiment(storage=URL), tmp_path / "run", [load_board(BOARD)], several_processes=True)
    assert run.storage_url == URL and "S3cr" not in repr(run)
    for name in ("config.yaml", "run.json"):
        assert "S3cr" not in (run.path / name).read_text(), name
    assert json.loads((run.path / "run.json").read_text())["storage"] == redact(URL)
    assert yaml.safe_load((run.path / "config.yaml").read_text())["search"]["storage"] == redact(URL)
    again = prepare_run_dir(experiment(storage=URL, workers=4), run.path, [load_board(BOARD)], several_processes=True)
    assert again.storage_url == URL, "the same config resumes: the stored config is compared redacted"


def test_resuming_a_run_whose_url_is_in_the_environment_says_what_to_set(tmp_path, monkeypatch):
    monkeypatch.setenv("MCUNAS_TEST_DB", URL)
    configured = experiment(storage="${MCUNAS_TEST_DB}")
    run = prepare_run_dir(configured, tmp_path / "run", [load_board(BOARD)], several_processes=True)
    assert yaml.safe_load((run.path / "config.yaml").read_text())["search"]["storage"] == "${MCUNAS_TEST_DB}"
    monkeypatch.delenv("MCUNAS_TEST_DB")
    with pytest.raises(ConfigError, match="MCUNAS_TEST_DB, which is not set"):
        prepare_run_dir(configured, run.path, [load_board(BOARD)], several_processes=True)
    monkeypatch.delenv(PASSWORD_VARIABLE, raising=False)
    with pytest.raises(RunDirError, match=PASSWORD_VARIABLE):  # the report reads run.json's redacted URL
        load_run(run.path)


def test_sqlite_is_refused_whenever_trials_run_on_ray(tmp_path):
    sqlite = default_storage_url(tmp_path, several_processes=False)
    check_storage_for(sqlite, several_processes=False)
    with pytest.raises(ConfigError, match=r"search\.storage: sqlite:///.* is SQLite, which trials in several processes"):
        check_storage_for(sqlite, several_processes=True)
    check_storage_for(default_storage_url(tmp_path, several_processes=True), several_processes=True)
    # Ray is used with a Ray address alone, and then the default storage is the journal file.
    joined = with_overrides(experiment(), None, None, "127.0.0.1:6379")
    assert joined.search.workers == 1 and uses_ray(joined)
    run = prepare_run_dir(joined, tmp_path / "joined", [load_board(BOARD)], several_processes=uses_ray(joined))
    assert run.storage_url.endswith("journal.log")
    # A run directory that holds a sequential run's SQLite study does not resume on Ray.
    sequential = prepare_run_dir(experiment(), tmp_path / "seq", [load_board(BOARD)], several_processes=False)
    with pytest.raises(ConfigError, match="resumes in one process only"):
        prepare_run_dir(experiment(workers=2), sequential.path, [load_board(BOARD)], several_processes=True)


def test_cli_refuses_sqlite_with_workers_in_one_clear_line(tmp_path, capsys):
    """The quick start with search.storage: sqlite:///... and --workers 2 (was: KeyError inside a Ray task)."""
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"name": "q", "dataset": {"name": "synthetic", "resolution": 8},
                                      "boards": [BOARD], "search": {"storage": f"sqlite:///{tmp_path}/s.db"}}))
    assert cli_main(["search", str(config), "--out", str(tmp_path / "run"), "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mcunas search: error: search.storage: sqlite:///") and "Traceback" not in err
    assert not (tmp_path / "run" / "config.yaml").exists()


def test_storage_errors_name_the_config_key_and_hide_passwords(tmp_path):
    with pytest.raises(ConfigError, match=r"search\.storage: folder of the journal file .* does not exist"):
        open_storage(str(tmp_path / "missing" / "journal.log"))
    for url in ("postgresql+psycopg2://mcunas:s3cret@127.0.0.1:1/mcunas", "nosuchdialect://u:s3cret@host/db"):
        with pytest.raises(ConfigError) as error:
            open_storage(url)
        assert str(error.value).startswith("search.storage: ") and "s3cret" not in str(error.value)


def test_a_torn_last_journal_record_is_dropped(tmp_path):
    url = str(tmp_path / "journal.log")
    study = optuna.create_study(study_name="s", storage=open_storage(url))
    study.enqueue_trial({"x": 1.0})
    whole = (tmp_path / "journal.log").read_bytes()
    (tmp_path / "journal.log").write_bytes(whole + b'{"op_code": 4, "worker_id": "killed", "tri')
    assert repair_journal(url) and (tmp_path / "journal.log").read_bytes() == whole
    assert not repair_journal(url)
    optuna.load_study(study_name="s", storage=open_storage(url)).enqueue_trial({"x": 2.0})
    assert len(optuna.load_study(study_name="s", storage=open_storage(url)).trials) == 2
