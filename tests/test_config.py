"""Settings precedence (flag > COFFER_* env > TOML file > default), types and ranges.

Unit tests of `load_settings`, and `coffer serve --config file.toml` end to end.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from coffer.config import Settings, flag_name, load_settings, normalize_database_url, setting_fields
from tests.support.harness import CofferServer, coffer_cmd, free_ports, run_coffer, worker_processes


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "coffer.toml"
    path.write_text(text)
    return str(path)


def test_defaults() -> None:
    s = load_settings(environ={})
    assert s == Settings()
    cpus = len(os.sched_getaffinity(0))
    assert (s.api_port, s.s3_port, s.workers, s.max_key_duration) == (8480, 8490, cpus, 43200)
    assert s.effective_database_url == f"sqlite:///{Path('./coffer-data').resolve() / 'coffer.db'}"
    assert s.audit_path == Path("./coffer-data").resolve() / "audit.log"


def test_file_then_env_then_flags(tmp_path: Path) -> None:
    cfg = write(tmp_path, 'api_port = 9001\ns3_port = 9002\nlog_level = "debug"\nmax_key_duration = 600\n')
    from_file = load_settings(config_file=cfg, environ={})
    assert (from_file.api_port, from_file.s3_port, from_file.log_level, from_file.max_key_duration) == (
        9001,
        9002,
        "debug",
        600,
    )
    env = {"COFFER_API_PORT": "9100", "COFFER_LOG_LEVEL": "warning"}
    from_env = load_settings(config_file=cfg, environ=env)
    assert (from_env.api_port, from_env.s3_port, from_env.log_level) == (9100, 9002, "warning")
    flagged = load_settings({"api_port": 9200, "log_level": None}, config_file=cfg, environ=env)
    assert (flagged.api_port, flagged.log_level) == (9200, "warning")  # None means "flag not given"


def test_config_file_from_the_environment(tmp_path: Path) -> None:
    cfg = write(tmp_path, "workers = 3\n")
    assert load_settings(environ={"COFFER_CONFIG": cfg}).workers == 3
    # An explicit --config wins over COFFER_CONFIG.
    other = tmp_path / "other.toml"
    other.write_text("workers = 5\n")
    assert load_settings(config_file=str(other), environ={"COFFER_CONFIG": cfg}).workers == 5


def test_coffer_table_and_hyphenated_keys(tmp_path: Path) -> None:
    cfg = write(tmp_path, '[coffer]\napi-port = 9300\nstrict-coreweave = true\ndata_dir = "/srv/coffer"\n')
    s = load_settings(config_file=cfg, environ={})
    assert (s.api_port, s.strict_coreweave, s.data_dir) == (9300, True, "/srv/coffer")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("api_prot = 1\n", "unknown setting 'api_prot'"),
        ('api_port = "8480"\n', "api_port must be a int"),
        ("api_port = 80.5\n", "api_port must be a int"),
        ("api_port = true\n", "api_port must be a int"),
        ('access_log = "yes"\n', "access_log must be a bool"),
        ("data_dir = 5\n", "data_dir must be a str"),
        ("api_port = \n", "Invalid value"),
    ],
)
def test_bad_config_files(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_settings(config_file=write(tmp_path, text), environ={})


def test_workers_auto_is_one_per_usable_cpu(tmp_path: Path) -> None:
    cpus = len(os.sched_getaffinity(0))
    assert load_settings(environ={"COFFER_WORKERS": "Auto"}).workers == cpus
    assert load_settings(config_file=write(tmp_path, 'workers = "auto"\n'), environ={}).workers == cpus
    assert load_settings({"workers": "auto"}, environ={"COFFER_WORKERS": "3"}).workers == cpus  # flag wins


def test_workers_takes_an_explicit_number_everywhere(tmp_path: Path) -> None:
    assert load_settings(config_file=write(tmp_path, "workers = 7\n"), environ={}).workers == 7
    assert load_settings(config_file=write(tmp_path, 'workers = "7"\n'), environ={}).workers == 7
    assert load_settings(environ={"COFFER_WORKERS": " 5 "}).workers == 5
    assert (
        load_settings({"workers": "9"}, environ={"COFFER_WORKERS": "auto"}).workers == 9
    )  # the flag is text
    assert Settings(workers=256).workers == 256


@pytest.mark.parametrize(
    ("value", "shown"),
    [("0", "0"), ("257", "257"), ("-1", "'-1'"), ("1.5", "'1.5'"), ("many", "'many'"), ("", "''")],
)
def test_bad_workers_values_name_the_setting(value: str, shown: str) -> None:
    with pytest.raises(
        ValueError, match=f"workers: must be auto or a number between 1 and 256, got {shown}$"
    ):
        load_settings(environ={"COFFER_WORKERS": value})


@pytest.mark.parametrize("text", ["workers = 2.0\n", "workers = true\n"])
def test_bad_workers_in_a_config_file(tmp_path: Path, text: str) -> None:
    with pytest.raises(ValueError, match='workers must be "auto" or an integer'):
        load_settings(config_file=write(tmp_path, text), environ={})


def test_float_settings_take_integers_from_files(tmp_path: Path) -> None:
    assert (
        load_settings(config_file=write(tmp_path, "cache_poll_seconds = 2\n"), environ={}).cache_poll_seconds
        == 2.0
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"COFFER_API_PORT": "http"}, "api_port: expected an integer, got 'http'"),
        ({"COFFER_CACHE_POLL_SECONDS": "soon"}, "cache_poll_seconds: expected a number, got 'soon'"),
        ({"COFFER_ACCESS_LOG": "maybe"}, "access_log: expected a boolean"),
        ({"COFFER_API_PORT": "70000"}, "api_port: must be between 0 and 65535"),
        ({"COFFER_WORKERS": "0"}, "workers: must be auto or a number between 1 and 256, got 0"),
        ({"COFFER_API_PORT": "9000", "COFFER_S3_PORT": "9000"}, "api_port and s3_port must differ"),
        ({"COFFER_LOG_LEVEL": "loud"}, "log_level: must be one of"),
        ({"COFFER_MAX_KEY_DURATION": "0"}, "max_key_duration: must be between 1 and 4294967295"),
        ({"COFFER_API_TOKEN_KEY_DURATION": "0"}, "api_token_key_duration: must be at least 60"),
        ({"COFFER_CACHE_POLL_SECONDS": "0"}, "cache_poll_seconds: must be between 0.05 and 60"),
        ({"COFFER_CACHE_POLL_SECONDS": "nan"}, "cache_poll_seconds: must be between 0.05 and 60"),
        ({"COFFER_DATABASE_URL": "mysql://x"}, "database_url: must start with postgresql://"),
        ({"COFFER_DATA_DIR": ""}, "data_dir: must not be empty"),
    ],
)
def test_bad_values_are_refused_with_the_setting_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_settings(environ=env)


@pytest.mark.parametrize(
    ("raw", "value"), [("1", True), ("true", True), ("on", True), ("0", False), ("no", False)]
)
def test_boolean_spellings(raw: str, value: bool) -> None:
    assert load_settings(environ={"COFFER_SIGV2": raw}).sigv2 is value


def test_database_urls_and_audit_paths(tmp_path: Path) -> None:
    assert normalize_database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_database_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_database_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    s = load_settings(environ={"COFFER_DATA_DIR": str(tmp_path), "COFFER_AUDIT_FILE": "logs/audit.jsonl"})
    assert s.audit_path == tmp_path / "logs" / "audit.jsonl"
    assert load_settings(environ={"COFFER_AUDIT_FILE": "/var/log/coffer.audit"}).audit_path == Path(
        "/var/log/coffer.audit"
    )
    assert load_settings(environ={"COFFER_AUDIT_FILE": ""}).audit_path is None


def test_every_setting_is_a_flag_of_serve() -> None:
    out = subprocess.run(
        [*coffer_cmd(), "serve", "--help"], capture_output=True, text=True, check=True, timeout=60
    )
    for f in setting_fields():
        assert flag_name(f.name) in out.stdout, f.name
    assert "--config" in out.stdout


# --- end to end -----------------------------------------------------------------------------


def serve(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*coffer_cmd(), "serve", *args],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("COFFER_")}, **env},
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_healthy(proc: subprocess.Popen[bytes], *urls: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        try:
            if all(httpx.get(u + "/healthz", timeout=1).status_code == 200 for u in urls):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not become healthy")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def test_serve_takes_ports_and_data_dir_from_the_config_file(tmp_path: Path) -> None:
    api, s3 = free_ports(2)
    cfg = tmp_path / "coffer.toml"
    cfg.write_text(
        f'[coffer]\ndata_dir = "{tmp_path / "from-file"}"\napi_port = {api}\ns3_port = {s3}\nworkers = 1\n'
    )
    proc = serve(["--config", str(cfg)], {}, tmp_path)
    try:
        wait_healthy(proc, f"http://127.0.0.1:{api}", f"http://127.0.0.1:{s3}")
        assert (tmp_path / "from-file" / "admin-token").exists()
    finally:
        stop(proc)


def test_serve_precedence_end_to_end(tmp_path: Path) -> None:
    """File says one port, COFFER_API_PORT another, the flag a third: the flag wins; env beats file."""
    file_api, env_api, flag_api, s3, env_s3 = free_ports(5)
    cfg = tmp_path / "coffer.toml"
    cfg.write_text(f'data_dir = "{tmp_path / "d"}"\napi_port = {file_api}\ns3_port = {s3}\n')
    proc = serve(
        ["--api-port", str(flag_api)],
        {
            "COFFER_CONFIG": str(cfg),
            "COFFER_API_PORT": str(env_api),
            "COFFER_S3_PORT": str(env_s3),
            "COFFER_WORKERS": "1",
        },
        tmp_path,
    )
    try:
        wait_healthy(proc, f"http://127.0.0.1:{flag_api}", f"http://127.0.0.1:{env_s3}")
        for unused in (file_api, env_api, s3):
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"http://127.0.0.1:{unused}/healthz", timeout=2)
    finally:
        stop(proc)


def test_serve_without_workers_runs_one_per_usable_cpu(tmp_path: Path) -> None:
    """No --workers: the server logs and runs as many workers as CPUs it may use (two, pinned here)."""
    cpus = set(sorted(os.sched_getaffinity(0))[:2])
    if len(cpus) < 2:
        pytest.skip("needs two CPUs to tell auto from one worker")
    api, s3 = free_ports(2)
    log_path = tmp_path / "serve.log"
    ports = ["--api-port", str(api), "--s3-port", str(s3)]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [*coffer_cmd(), "serve", "--data-dir", str(tmp_path / "d"), *ports],
            env={k: v for k, v in os.environ.items() if not k.startswith("COFFER_")},
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: os.sched_setaffinity(0, cpus),
        )
    server = CofferServer(data_dir=tmp_path / "d", workers=2, api_port=api, s3_port=s3, proc=proc)
    try:
        wait_healthy(proc, f"http://127.0.0.1:{api}", f"http://127.0.0.1:{s3}")
        deadline = time.monotonic() + 30
        while len(worker_processes(server, s3)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(worker_processes(server, s3)) == 2
        lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
        started = [line for line in lines if "worker(s)" in line.get("message", "")]
        assert started and started[0]["workers"] == 2, lines
        assert "with 2 worker(s)" in started[0]["message"]
    finally:
        stop(proc)


def test_serve_refuses_bad_settings_cleanly(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("api_port = 99999\n")
    out = run_coffer("serve", "--config", str(cfg), timeout=60)
    assert out.returncode == 2
    assert "api_port: must be between 0 and 65535, got 99999" in out.stderr
    assert "Traceback" not in out.stderr
