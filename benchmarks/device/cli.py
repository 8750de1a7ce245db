"""What a user gives the device run, checked before anything is written: the flags, $BUDGET, OUT and the
data. A bad value is one line, `device_run.sh: error: ...`, exit 2."""
import argparse
import math
import os
import sys

from benchmarks.device.steps import programme

PROG = "device_run.sh"


class BadInput(Exception):
    """A flag, an environment variable or an earlier lease's files that the run refuses (one line)."""


def fail(message):
    print(f"{PROG}: error: {message}", file=sys.stderr)
    sys.exit(2)


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        fail(message)


def seconds(text, what):
    """A finite number of seconds > 0, or BadInput naming `what`."""
    try:
        value = float(text)
    except ValueError:
        raise BadInput(f"{what}: expected seconds, got {text!r}") from None
    if not math.isfinite(value):
        raise BadInput(f"{what}: expected a finite number of seconds, got {text!r}")
    if value <= 0:
        raise BadInput(f"{what}: must be > 0 seconds, got {text!r}")
    return value


def pairs(flag):
    """An argparse type for 'a=1,b=2' -> {'a': 1.0, 'b': 2.0}: seconds per step (names checked later,
    once the programme is known)."""
    def parse(text):
        out = {}
        for item in (i for i in text.split(",") if i):
            name, eq, value = item.partition("=")
            if not eq or not name:
                raise argparse.ArgumentTypeError(f"expected STEP=SECONDS[,STEP=SECONDS], got {text!r}")
            try:
                out[name] = seconds(value, f"{flag} {name}")
            except BadInput as e:
                raise argparse.ArgumentTypeError(str(e)) from None
        return out
    return parse


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number > 0, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def parse(argv, usage):
    p = Parser(prog=PROG, description=usage)
    p.add_argument("out", metavar="OUT")
    p.add_argument("--tiny", action="store_true", help="the same steps, small, on a CPU")
    p.add_argument("--plan", action="store_true", help="print the steps each lease would run; run nothing")
    p.add_argument("--leases", type=positive_int, default=None, help="with --plan: plan this many leases")
    p.add_argument("--continue", dest="prev", default=None, metavar="PREV",
                   help="an earlier lease's results.tar.gz (state parts beside it) or its folder")
    p.add_argument("--cap", type=pairs("--cap"), default={}, help="STEP=SECONDS: that step's cap")
    p.add_argument("--assume", type=pairs("--assume"), default={}, help="STEP=SECONDS: that step's estimate (a what-if)")
    a = p.parse_args(argv)
    names = [s.name for s in programme(a.tiny)]
    for flag, given in (("--cap", a.cap), ("--assume", a.assume)):
        unknown = [n for n in given if n not in names]
        if unknown:
            fail(f"{flag}: no step named {', '.join(map(repr, unknown))} in the {'tiny' if a.tiny else 'H200'} "
                 f"programme; its steps: {', '.join(names)}")
    check_out(a.out)
    return a


def check_out(out):
    """OUT must be a folder or creatable as one: not empty, not a file, not below a file."""
    if not out:
        fail("OUT is empty; give the folder the lease's results go to")
    head = os.path.abspath(out)
    while not os.path.exists(head):
        head = os.path.dirname(head)
    if not os.path.isdir(head):
        fail(f"OUT {out} is a file; give a folder" if head == os.path.abspath(out) else
             f"OUT {out}: {head} is a file, not a folder")


def budget(tiny, overhead_s):
    """$BUDGET: the lease's seconds (default 540, --tiny too: a tiny lease is planned as a GPU lease), more
    than the `overhead_s` every lease pays."""
    text = os.environ.get("BUDGET", "")
    if not text:
        return 540
    if not text.isdigit() or int(text) <= overhead_s:
        fail(f"BUDGET={text!r}: expected a whole number of seconds above the {overhead_s} s every lease "
             f"pays for its start-up and its report")
    return int(text)


def data(tiny):
    """The data the training steps read: synthetic for --tiny, else $CIFAR10, checked before OUT is made."""
    if tiny:
        return "synthetic:600"
    path = os.environ.get("CIFAR10") or fail("set CIFAR10 to the data (e.g. data/cifar10-jpeg.tar.gz)")
    if not os.path.exists(path):
        fail(f"CIFAR10={path}: no such file or folder")
    return os.path.abspath(path)


def check_fresh_out(out, prev):
    """Never overwrite an earlier lease: OUT must be new or empty, unless this run continues OUT itself."""
    if not os.path.isdir(out) or not os.listdir(out):
        return
    same = prev is not None and os.path.realpath(out) in (os.path.realpath(prev),
                                                           os.path.realpath(os.path.dirname(prev)))
    if not same:
        held = ", ".join(sorted(os.listdir(out))[:4])
        fail(f"OUT {out} is not empty (it holds {held}); give a new folder, or --continue {out} to continue "
             f"the lease it holds")
