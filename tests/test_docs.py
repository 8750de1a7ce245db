"""The README is a way in, one screen long, with no number that could drift from the report; every
command the README and docs/ show is accepted, as shown, by the program it names."""
import argparse
import importlib
import os
import re
import shlex
import signal

import pytest

from tests.conftest import REPO

DOCS = ["README.md"] + [os.path.join("docs", f) for f in sorted(os.listdir(os.path.join(REPO, "docs")))]
SCRIPTS = {"benchmarks/device_run.sh": "benchmarks.device.run"}  # a script and the module it runs
ENTRY = {"benchmarks.report": "benchmarks.report.build"}  # a package run with -m and the module of its main()


def text(name):
    with open(os.path.join(REPO, name)) as f:
        return f.read()


def shown_commands(doc):
    """Each command of the doc's ```sh blocks (continuations joined, comments and VAR= prefixes dropped)
    and each inline `python -m ...` with flags, as argv lists."""
    found = []
    for block in re.findall(r"```sh\n(.*?)```", doc, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                found.append(line)
    found += [c for c in re.findall(r"`(python -m [^`]+)`", doc) if " --" in c]
    argvs = []
    for line in found:
        argv = shlex.split(line.replace("$CIFAR10", "data.tar.gz"))
        while argv and re.fullmatch(r"[A-Z_0-9]+=.*", argv[0]):
            argv = argv[1:]
        argvs.append(argv)
    return argvs


def program_of(argv):
    """(module whose main() parses these arguments, the arguments) or None for make and pytest."""
    if argv[:2] == ["python", "-m"]:
        return ENTRY.get(argv[2], argv[2]), argv[3:]
    if argv[0] == "bash" and argv[1] in SCRIPTS:
        return SCRIPTS[argv[1]], argv[2:]
    assert argv[0] in ("make", "pytest"), f"a command of unknown kind: {argv}"
    return None


class Parsed(Exception):
    pass


def accepted(module, args, monkeypatch):
    """Whether the module's main() parses `args` (it stops right after parsing: nothing runs)."""
    parse = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, a=None, namespace=None):
        parse(self, a, namespace)
        raise Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        importlib.import_module(module).main(args)
    except Parsed:
        return True
    except SystemExit:
        return False
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
    return False


COMMANDS = [(doc, argv) for doc in DOCS for argv in shown_commands(text(doc))]


@pytest.mark.parametrize("doc,argv", COMMANDS, ids=[f"{d}: {' '.join(a)[:60]}" for d, a in COMMANDS])
def test_every_command_shown_is_accepted_by_its_program(doc, argv, monkeypatch, capsys):
    program = program_of(argv)
    if program is None:
        name = argv[1] if argv[0] == "make" else None
        assert name is None or re.search(rf"(?m)^{name}:", text("Makefile")), f"no make target {name}"
        for path in [a for a in argv[1:] if argv[0] == "pytest" and not a.startswith("-")]:
            assert os.path.exists(os.path.join(REPO, path)), path
        return
    module, args = program
    assert accepted(module, args, monkeypatch), f"{doc}: {' '.join(argv)}: {capsys.readouterr().err.strip()}"


def test_the_check_refuses_a_flag_that_does_not_exist(monkeypatch, capsys):  # control
    assert accepted("flax_impl.train", ["--epochs", "3"], monkeypatch)
    assert not accepted("flax_impl.train", ["--epochz", "3"], monkeypatch)
    assert not accepted("benchmarks.device.run", ["OUT", "--plna"], monkeypatch)


def test_the_docs_show_the_main_commands():  # the extraction finds what it must check
    argvs = [a for doc in DOCS for a in shown_commands(text(doc))]
    modules = {program_of(a)[0] for a in argvs if program_of(a)}
    assert {"flax_impl.train", "torch_ref.train", "flax_impl.evaluate", "benchmarks.device.run",
            "flax_impl.export"} <= modules


def test_the_readme_is_one_screen_with_no_hand_copied_result():
    readme = text("README.md")
    assert len(readme.splitlines()) <= 200
    found = readme[readme.index("## What we found"):readme.index("## Where to find")]
    assert "REPORT.md" in found
    # a result would be a decimal number, a ± or a p-value: those live in the report only
    assert not re.search(r"\d\.\d|±|\bp [<=]|\d+(\.\d+)?%", found), found


def test_the_readme_links_only_to_files_that_exist():
    for doc in DOCS:
        for link in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text(doc)):
            if "://" not in link:
                assert os.path.exists(os.path.join(REPO, os.path.dirname(doc), link)), f"{doc}: {link}"
