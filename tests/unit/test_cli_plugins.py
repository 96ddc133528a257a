"""`rocketmq-retry` takes the verbs of the lab and chaos from their entry points, and refuses a broken plugin loudly."""

from importlib import metadata

import click
import pytest
from click.testing import CliRunner

from rocketmq_retry.cli import COMMANDS, PluggableGroup, main


def registering(monkeypatch: pytest.MonkeyPatch, *entries: tuple[str, str]) -> None:
    """Make `entries` (name, value) the only registered verbs."""
    registered = [metadata.EntryPoint(name, value, COMMANDS) for name, value in entries]
    monkeypatch.setattr(PluggableGroup, "_registered", staticmethod(lambda: registered))


def test_the_installed_lab_and_chaos_add_their_verbs_and_chaos_run_joins_the_chaos_group() -> None:
    context = click.Context(main)
    assert main.list_commands(context) == ["chaos", "demo", "dlq", "kind", "local", "operator", "setup"]
    chaos = main.get_command(context, "chaos")
    assert isinstance(chaos, click.Group)
    assert sorted(chaos.commands) == ["in-cluster", "kill-pods", "run"]
    local = main.get_command(context, "local")
    assert isinstance(local, click.Group)
    assert sorted(local.commands) == ["down", "kill", "pause", "restart", "resume", "status", "up"]


def test_a_verb_whose_plugin_fails_to_import_is_an_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    registering(monkeypatch, ("broken", "rocketmq_no_such_plugin.cli:verb"))
    result = CliRunner().invoke(main, ["broken"])
    assert result.exit_code == 1
    assert "the verb `broken`" in result.output
    assert "rocketmq_no_such_plugin.cli:verb" in result.output
    assert "failed to load: ModuleNotFoundError" in result.output


def test_a_plugin_that_is_not_a_click_command_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    registering(monkeypatch, ("dumps", "json:dumps"))
    result = CliRunner().invoke(main, ["dumps"])
    assert result.exit_code == 1
    assert "is not a click command" in result.output


def test_a_verb_two_plugins_register_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    registering(monkeypatch, ("twice", "rocketmq_lab.cli:local"), ("twice", "rocketmq_lab.cli:kind"))
    result = CliRunner().invoke(main, ["twice", "--help"])
    assert result.exit_code == 1
    assert "the verb `twice` is registered by" in result.output


def test_the_operator_verbs_need_no_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    registering(monkeypatch, ("broken", "rocketmq_no_such_plugin.cli:verb"))
    result = CliRunner().invoke(main, ["operator", "run", "--help"])
    assert result.exit_code == 0, result.output
    assert "--all-namespaces" in result.output
