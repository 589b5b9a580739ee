"""The README documents every command, and its two set-up commands are the real ones."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from earful.pipeline.cli import cli

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def commands(group: click.Group, prefix: str = "earful") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            found.extend(commands(command, path))
        else:
            found.append((path, command))
    return found


@pytest.mark.parametrize(("path", "command"), commands(cli), ids=lambda v: v if isinstance(v, str) else "")
def test_every_command_has_help_and_is_in_the_readme(path: str, command: click.Command) -> None:
    assert command.help, f"{path} has no help text"
    assert f"`{path}" in README, f"{path} is not documented in README.md"
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert param.help, f"{path} {param.opts[0]} has no help text"


def test_readme_names_exactly_two_setup_commands_and_ci_runs_the_test_one() -> None:
    section = README.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    lines = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert lines == ["make demo", "make test"]
    ci = [
        line
        for line in (REPO / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "set ", "cd "))
    ]
    assert ci == ["make test"]
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M)
    assert re.search(r"^test:", makefile, re.M)


def test_every_config_key_is_documented() -> None:
    from earful.pipeline.config import Config

    for name in Config.model_fields:
        if name != "path":
            assert f"`{name}" in README, f"config key {name} is not in README.md"
