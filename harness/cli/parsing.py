"""The parser's own behaviour: "did you mean" for a misspelt command or flag, help that keeps examples as written,
and `--version`."""

from __future__ import annotations

import argparse
import difflib
import re
from pathlib import Path

GIVEN: list[str] = []
"""The command line being parsed, for the parser's advice on a mistake."""


class Parser(argparse.ArgumentParser):
    """argparse, plus "did you mean" for a misspelt command or flag: its own error names the mistake only. A flag is
    never taken from its first letters (`--hosted 5` was read as `--hosted-price 5`, `--eng-hour` as `--eng-hours`):
    a misspelt money flag is refused with the right one named. An unknown flag is refused by the command it was given
    to, with that command's usage and its flags to suggest (the top level suggested `--out` to `payback`)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.set_defaults(_parser=self)  # the deepest command's wins: who refuses a flag it does not know

    def parse_args(self, args=None, namespace=None):
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            getattr(parsed, "_parser", self).error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed

    def error(self, message: str):
        word = re.search(r"invalid choice: '([^']*)'|unrecognized arguments: (\S+)", message)
        dashed = next((a for a in GIVEN if a.startswith("-") and len(a) > 1 and Path(a).exists()), None)
        if dashed is not None and ("arguments are required" in message or word):
            # `harness sweep -exp.yaml`: argparse reads a file named with a leading dash as an option
            message += (f"; {dashed!r} is a file whose name begins with '-', so it was read as an option: write it "
                        f"as ./{dashed}")
        elif word:
            given = word.group(1) or word.group(2)
            close = difflib.get_close_matches(given.split("=", 1)[0], command_words(self, given.startswith("-")), n=1)
            if close:
                message += f"; did you mean `{close[0]}`?"
        super().error(message)


class Help(argparse.HelpFormatter):
    """Prose paragraphs wrap to the terminal; a block whose lines after the first are indented (`examples:` and its
    commands) keeps its lines as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        blocks = []
        for block in text.split("\n\n"):
            lines = block.splitlines()
            if len(lines) > 1 and all(line.startswith("  ") for line in lines[1:]):
                blocks.append("\n".join(indent + line for line in lines))
            else:
                blocks.append(super()._fill_text(block, width, indent))
        return "\n\n".join(blocks)


def teach(parser: argparse.ArgumentParser, *rows: tuple[str, str], description: str | None = None) -> None:
    """Give a subcommand's --help its examples (and a description where the one-line help is not enough)."""
    parser.formatter_class = Help
    if description is not None:
        parser.description = description
    parser.epilog = examples_block(*rows)


def login_name() -> str:
    """Who runs the command, for the records that name an actor by default: the account of this process's user id
    (`harness.core.identity`), not $LOGNAME, which any shell sets."""
    from harness.core.identity import os_account

    return os_account()


def examples_block(*rows: tuple[str, str]) -> str:
    """An `examples:` block: each command, then what it does (on the next line, after a long command)."""
    width = max((len(command) for command, _ in rows if len(command) <= 56), default=0) + 2
    lines = []
    for command, what in rows:
        if what and len(command) > 56:
            lines += [f"  {command}", f"      {what}"]
        else:
            lines.append(f"  {command:<{width}}{what}".rstrip())
    return "examples:\n" + "\n".join(lines)


def command_words(parser: argparse.ArgumentParser, flags: bool) -> list[str]:
    """Every command (or every flag) `parser` and its subcommands accept."""
    words = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            words += [] if flags else list(action.choices)
            for child in action.choices.values():
                words += command_words(child, flags)
        elif flags:
            words += action.option_strings
    return words


class VersionAction(argparse.Action):
    """`harness --version`: the installed version, and the commit where it runs from a checkout (what every run
    records as its `harness_git_commit`)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print the harness's version (and its commit, from a checkout), and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib import metadata

        from harness.core.paths import git_commit

        try:
            version = metadata.version("finetune-harness")
        except metadata.PackageNotFoundError:
            version = "(not installed)"
        commit = git_commit()
        print(f"harness {version}" + (f", commit {commit}" if commit else ""))
        parser.exit()
