"""raftctl's YAML config file with named contexts: where it is, how a context is selected, what
overrides it, `raftctl context list|use|show`, and one-line errors for every malformed file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from raftctl.certs import make_ca
from raftctl.configfile import config_path, load_config
from raftctl.main import app
from raftctl.options import Globals, GlobalsCommand, GlobalsGroup, Target, build_globals
from tests.cli.realnodes import RealCluster

runner = CliRunner()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith("RAFTCTL_") or name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
            monkeypatch.delenv(name)
    path = tmp_path / "raftctl" / "config.yaml"
    monkeypatch.setenv("RAFTCTL_CONFIG", str(path))
    return path


def write(path: Path, doc: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return path


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    res = runner.invoke(app, list(args), env=env)
    return res.exit_code, res.stdout, res.stderr


def parsed(*before: str, after: tuple[str, ...] = ()) -> Globals:
    """The ``Globals`` a command sees for these flags (before / after it) and the environment:
    parsed by the real option set (Typer's envvar=, the same classes as raftctl's app)."""
    probe = typer.Typer(cls=GlobalsGroup, add_completion=False)
    seen: list[Globals] = []

    @probe.callback()
    def root() -> None:
        """The root."""

    @probe.command(cls=GlobalsCommand)
    def show(ctx: typer.Context) -> None:
        seen.append(Globals.of(ctx))

    res = runner.invoke(probe, [*before, "show", *after])
    assert res.exit_code == 0 and len(seen) == 1, (res.output, res.exception)
    return seen[0]


def test_config_path_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert config_path({"XDG_CONFIG_HOME": "/x"}) == Path("/x/raftctl/config.yaml")
    assert config_path({}) == Path.home() / ".config" / "raftctl" / "config.yaml"
    assert config_path({"RAFTCTL_CONFIG": "/y/c.yaml", "XDG_CONFIG_HOME": "/x"}) == Path(
        "/y/c.yaml"
    )


def test_no_file_is_an_empty_config(clean_env: Path) -> None:
    config = load_config()
    assert config.contexts == {} and config.current is None and not config.exists
    g = build_globals({})
    assert g.target is Target.local and g.context is None
    code, out, _ = cli("context", "list")
    assert code == 0 and "no contexts defined" in out and "(no such file)" in out


def test_context_values_sit_between_env_and_defaults(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        clean_env,
        {
            "current-context": "prod",
            "contexts": {
                "prod": {
                    "target": "kind",
                    "name": "kv",
                    "namespace": "store",
                    "token": "t0ken-123456",
                    "endpoints": ["http://a:1", "http://b:2"],
                },
                "lab": {"target": "local", "name": "lab"},
            },
        },
    )
    g = build_globals({})
    assert (g.context, g.target, g.name, g.namespace, g.token) == (
        "prod",
        Target.kind,
        "kv",
        "store",
        "t0ken-123456",
    )
    assert g.endpoints == ("http://a:1", "http://b:2")
    # --context (or RAFTCTL_CONTEXT) selects another one
    assert build_globals({"context": "lab"}).name == "lab"
    monkeypatch.setenv("RAFTCTL_CONTEXT", "lab")
    assert parsed().name == "lab"
    assert parsed("--context", "prod").name == "kv"  # flag before the command wins
    monkeypatch.delenv("RAFTCTL_CONTEXT")
    # env vars override the context, flags override both
    monkeypatch.setenv("RAFTCTL_NAMESPACE", "from-env")
    assert parsed().namespace == "from-env"
    assert parsed(after=("--namespace", "from-flag")).namespace == "from-flag"
    assert parsed(after=("--target", "local")).target is Target.local
    # after the command > before it > environment
    assert parsed("--namespace", "before", after=("--namespace", "after")).namespace == "after"
    assert parsed("--namespace", "before").namespace == "before"


def test_a_command_runs_against_the_contexts_endpoints(clean_env: Path, nodes: RealCluster) -> None:
    write(clean_env, {"contexts": {"nodes": {"endpoints": ",".join(nodes.urls)}}})
    code, out, err = cli("--context", "nodes", "put", "greeting", "hi")
    assert code == 0, err
    code, out, err = cli("get", "greeting", "--context", "nodes")
    assert code == 0 and out == "hi\n", err
    # without a context (and no current-context) there is no such cluster to talk to
    code, _, err = cli("get", "greeting", env={"RAFTCTL_STATE_DIR": str(clean_env.parent)})
    assert code == 1 and len(err.strip().splitlines()) == 1


def test_context_list_use_show(clean_env: Path) -> None:
    write(
        clean_env,
        {
            "contexts": {
                "prod": {"target": "kind", "namespace": "store", "token": "t0ken-123456"},
                "lab": {"endpoints": "http://127.0.0.1:1"},
            }
        },
    )
    code, out, _ = cli("context", "list")
    assert code == 0 and "prod" in out and "lab" in out and "t0ken" not in out
    code, out, _ = cli("context", "use", "prod")
    assert code == 0 and "switched to context 'prod'" in out
    assert yaml.safe_load(clean_env.read_text())["current-context"] == "prod"
    assert load_config().contexts["lab"] == {"endpoints": "http://127.0.0.1:1"}  # kept
    doc = json.loads(cli("context", "list", "-o", "json")[1])
    assert [(c["context"], c["current"]) for c in doc["contexts"]] == [
        ("lab", False),
        ("prod", True),
    ]
    assert doc["contexts"][1]["token"] == "(set)"
    doc = json.loads(cli("context", "show", "-o", "json")[1])
    assert doc["context"] == "prod" and doc["current"] is True
    assert doc["fields"]["namespace"] == "store" and doc["fields"]["token"] == "(set)"
    doc = json.loads(cli("context", "show", "lab", "-o", "json")[1])
    assert doc["fields"]["endpoints"] == ["http://127.0.0.1:1"] and doc["current"] is False
    code, out, _ = cli("context", "show", "prod")
    assert code == 0 and "context prod (current)" in out and "t0ken" not in out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("contexts: [unclosed", "bad YAML at line 1 column 20: expected ',' or ']'"),
        (
            "contexts:\n  prod:\n    target: docker\n",
            "context 'prod': target must be local or kind",
        ),
        ("contexts:\n  prod:\n    colour: red\n", "context 'prod': unknown field 'colour'"),
        ("contexts:\n  prod:\n    endpoints: 5\n", "endpoints must be a list of URLs"),
        ("- just\n- a list\n", "must be a mapping with `contexts:`"),
        ("current-context: gone\ncontexts:\n  prod: {}\n", "current-context 'gone' is not one"),
        ("contxts: {}\n", "unknown top-level key(s) contxts"),
    ],
)
def test_bad_config_is_one_line_for_any_command(clean_env: Path, text: str, message: str) -> None:
    write(clean_env, text)
    for args in (["status"], ["context", "list"]):
        code, out, err = cli(*args)
        lines = err.strip().splitlines()
        assert code == 1 and len(lines) == 1, (args, err)
        assert lines[0].startswith(f"error: {clean_env}: ") and message in lines[0], lines
        assert "Traceback" not in out + err


def test_unknown_context_names_the_known_ones(clean_env: Path) -> None:
    write(clean_env, {"contexts": {"prod": {}, "lab": {}}})
    code, _, err = cli("--context", "nope", "status")
    assert code == 1 and "no context named 'nope'" in err and "(contexts: lab, prod)" in err
    code, _, err = cli("context", "use", "nope")
    assert code == 1 and "no context named 'nope'" in err


def test_cacert_must_exist_and_is_trusted(
    clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(clean_env, {"contexts": {"tls": {"cacert": str(tmp_path / "missing.pem")}}})
    code, _, err = cli("--context", "tls", "context", "show")
    assert code == 2 and "is not a file" in err
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\n")
    write(clean_env, {"contexts": {"tls": {"cacert": str(garbage)}}})
    code, _, err = cli("--context", "tls", "context", "show")
    assert code == 2 and "cannot load a CA bundle" in err  # refused in one line, not a traceback
    bundle = make_ca(tmp_path / "ca").cert_path
    write(clean_env, {"contexts": {"tls": {"cacert": str(bundle)}}})
    monkeypatch.setenv("SSL_CERT_FILE", "")  # restored by monkeypatch after the test
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "")
    g = build_globals({"context": "tls"})
    assert g.cacert == bundle
    assert os.environ["SSL_CERT_FILE"] == os.environ["REQUESTS_CA_BUNDLE"] == str(bundle)
