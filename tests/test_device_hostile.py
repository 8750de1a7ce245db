"""The device run under attack (issue 31's third round): what a lease brings back is read as data that may
be hostile, bad arguments are one line (`device_run.sh: error: ...`, exit 2) before anything is written,
an earlier lease is never overwritten, and a stopped lease packs what it has. Each case failed on the
code before it."""
import io
import json
import os
import signal
import subprocess
import tarfile
import time

import pytest

from tests.test_device_run import device_run, work_folders_left

STEPS = {"programme": "h200", "records": [
    {"name": "parity", "kind": "parity", "batch": 64, "lease": 1, "machine": "m", "date": "d", "status": "finished",
     "planned_s": 90, "cap_s": 120, "actual_s": 80}]}


def tarball(path, members):
    """A results.tar.gz of (TarInfo, bytes or None) pairs, written as given (no filter)."""
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def member(name, data=b"", kind=tarfile.REGTYPE, link=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info, (data if kind == tarfile.REGTYPE else None)


def steps_member(steps=STEPS):
    return member("./steps.json", json.dumps(steps).encode())


def refused(r, says=""):
    assert r.returncode == 2, (r.returncode, r.stdout[-500:], r.stderr[-2000:])
    err = r.stderr.strip()
    assert err.count("\n") == 0 and err.startswith("device_run.sh: error: ") and "Traceback" not in err, err
    assert says in err, err


def left_alone(tmp_path, before):
    """Nothing new beside the inputs a test made: no OUT, no file outside, no work folder."""
    assert sorted(p.name for p in tmp_path.iterdir()) == before and work_folders_left(tmp_path) == []


LINKS = {
    "a symlink inside": [steps_member(), member("./inside", kind=tarfile.SYMTYPE, link="steps.json")],
    "a hard link inside": [steps_member(), member("./copy", kind=tarfile.LNKTYPE, link="./steps.json")],
    "a symlink out": [steps_member(), member("./out", kind=tarfile.SYMTYPE, link="/etc/hostname")],
}


@pytest.mark.parametrize("case", LINKS)
def test_a_results_tarball_with_a_link_member_is_refused(tmp_path, case):  # issue 31, item 1
    (tmp_path / "tmp").mkdir()
    prev = tarball(tmp_path / "results.tar.gz", LINKS[case])
    before = sorted(p.name for p in tmp_path.iterdir())
    r = device_run(tmp_path / "out", "--plan", "--continue", prev, tmp_path=tmp_path)
    refused(r, "link")
    left_alone(tmp_path, before)


def test_a_tarball_that_would_unpack_past_the_limit_is_refused_before_writing(tmp_path, monkeypatch):
    from benchmarks.device import pack
    monkeypatch.setattr(pack, "UNPACK_BYTES", 1000)  # a gzip bomb's size, scaled down
    prev = tarball(tmp_path / "results.tar.gz", [steps_member(), member("./big", b"\0" * 2000)])
    dest = tmp_path / "work"
    dest.mkdir()
    with pytest.raises(pack.BadInput, match="would unpack to"):
        pack.extract(str(prev), str(dest), "PREV")
    assert list(dest.iterdir()) == []
    monkeypatch.setattr(pack, "UNPACK_BYTES", 10_000)  # control: under the limit it unpacks
    pack.extract(str(prev), str(dest), "PREV")
    assert (dest / "big").stat().st_size == 2000


def test_a_state_part_with_a_link_member_is_refused(tmp_path):  # item 1: the state parts are read alike
    (tmp_path / "tmp").mkdir()
    prev = tarball(tmp_path / "results.tar.gz", [steps_member()])
    tarball(tmp_path / "state.tar.gz.1", [member("convergence", kind=tarfile.DIRTYPE),
                                          member("convergence/x", kind=tarfile.SYMTYPE, link="../../..")])
    before = sorted(p.name for p in tmp_path.iterdir())
    refused(device_run(tmp_path / "out", "--plan", "--continue", prev, tmp_path=tmp_path), "link")
    left_alone(tmp_path, before)


def deep(n=100_000):
    return ("[" * n + "]" * n).encode()


def valid_gz(tmp_path):
    return tarball(tmp_path / "whole.tar.gz", [steps_member(), member("./log.txt", os.urandom(4096))]).read_bytes()


DAMAGED = {  # item 19: each a one-line error, exit 2
    "not gzip": lambda t: b"this is not a tarball",
    "truncated": lambda t: valid_gz(t)[:200],
    "a member outside": lambda t: tarball(t / "x.tar.gz", [steps_member(), member("../x", b"out")]).read_bytes(),
    "an absolute member": lambda t: tarball(t / "x.tar.gz", [steps_member(), member("/tmp/x", b"out")]).read_bytes(),
    "a device member": lambda t: tarball(t / "x.tar.gz", [steps_member(), member("./dev", kind=tarfile.CHRTYPE)]
                                         ).read_bytes(),
    "a fifo member": lambda t: tarball(t / "x.tar.gz", [steps_member(), member("./fifo", kind=tarfile.FIFOTYPE)]
                                       ).read_bytes(),
    "steps.json a list": lambda t: tarball(t / "x.tar.gz", [member("./steps.json", b"[]")]).read_bytes(),
    "steps.json nested 100,000 deep": lambda t: tarball(t / "x.tar.gz", [member("./steps.json", deep())]).read_bytes(),
    "steps.json not JSON": lambda t: tarball(t / "x.tar.gz", [member("./steps.json", b"{")]).read_bytes(),
    "a record without status": lambda t: tarball(t / "x.tar.gz", [steps_member(
        {"programme": "h200", "records": [{"name": "parity", "lease": 1}]})]).read_bytes(),
    "records a string": lambda t: tarball(t / "x.tar.gz", [steps_member({"programme": "h200", "records": "x"})]
                                          ).read_bytes(),
    "an engine no trainer has": lambda t: tarball(t / "x.tar.gz", [steps_member({"programme": "h200", "records": [
        {**STEPS["records"][0], "name": "main-torch", "status": "cut", "engine": "vmap --compile"}]})]).read_bytes(),
    "a lease of another type": lambda t: tarball(t / "x.tar.gz", [steps_member({"programme": "h200", "records": [
        {**STEPS["records"][0], "lease": "1"}]})]).read_bytes(),
    "a cut step's history not JSON": lambda t: tarball(t / "x.tar.gz", [
        steps_member({"programme": "h200", "records": [{**STEPS["records"][0], "name": "main-flax", "status": "cut"}]}),
        member("./convergence/flax/baseline/seed_0/history.json", b"{not json"),
        member("./convergence/flax/train_state.msgpack", b"state")]).read_bytes(),
}


@pytest.mark.parametrize("case", DAMAGED)
def test_a_damaged_lease_is_one_line_and_loses_nothing(tmp_path, case):
    (tmp_path / "tmp").mkdir()
    data = DAMAGED[case](tmp_path)
    for scratch in ("x.tar.gz", "whole.tar.gz"):
        if (tmp_path / scratch).exists():
            (tmp_path / scratch).unlink()
    prev = tmp_path / "results.tar.gz"
    prev.write_bytes(data)
    before = sorted(p.name for p in tmp_path.iterdir())
    refused(device_run(tmp_path / "out", "--plan", "--continue", prev, tmp_path=tmp_path))
    left_alone(tmp_path, before)
    assert prev.read_bytes() == data


def test_a_folder_to_continue_with_a_link_in_it_is_refused(tmp_path):  # item 11
    (tmp_path / "tmp").mkdir()
    prev = tmp_path / "prev"
    prev.mkdir()
    (prev / "steps.json").write_text(json.dumps(STEPS))
    secret = tmp_path / "secret.txt"
    secret.write_text("a file of this machine")
    os.symlink(secret, prev / "notes.txt")
    before = sorted(p.name for p in tmp_path.iterdir())
    refused(device_run(tmp_path / "out", "--plan", "--continue", prev, tmp_path=tmp_path), "link")
    left_alone(tmp_path, before)


@pytest.mark.parametrize("steps, flags, says", [
    ({**STEPS, "programme": "tiny"}, [], "tiny"),  # a CPU lease's steps never stand for the GPU's
    (STEPS, ["--tiny"], "H200"),
    ({"records": STEPS["records"]}, [], "programme"),  # written before steps.json said which
])
def test_a_lease_of_another_programme_is_not_continued(tmp_path, steps, flags, says):  # item 10
    (tmp_path / "tmp").mkdir()
    prev = tarball(tmp_path / "results.tar.gz", [steps_member(steps)])
    refused(device_run(tmp_path / "out", "--plan", *flags, "--continue", prev, tmp_path=tmp_path), says)


def test_a_tiny_lease_says_it_is_tiny(tmp_path):  # item 10: what the check above reads
    from benchmarks.device import ledger
    records = []
    ledger.save(str(tmp_path), records, tiny=True)
    assert json.load(open(tmp_path / "steps.json")) == {"programme": "tiny", "records": []}


@pytest.mark.parametrize("args, says", [
    (["--assume", "parity=nan"], "finite"), (["--assume", "parity=inf"], "finite"),
    (["--assume", "paritty=90"], "paritty"), (["--assume", "parity=-5"], "> 0"), (["--assume", "parity=0"], "> 0"),
    (["--cap", "parity=nan"], "finite"), (["--cap", "parity=-5"], "> 0"), (["--cap", "nosuch=5"], "nosuch"),
    (["--leases", "0"], "--leases"), (["--leases", "-3"], "--leases"), (["--leases", "x"], "--leases"),
])
def test_bad_estimates_caps_and_lease_counts_are_refused(tmp_path, args, says):  # item 20
    (tmp_path / "tmp").mkdir()
    refused(device_run(tmp_path / "out", "--plan", *args, tmp_path=tmp_path), says)


@pytest.mark.parametrize("budget", ["abc", "540s", "0", "-5", "nan", "20"])
def test_a_bad_budget_is_refused(tmp_path, budget):  # item 21
    (tmp_path / "tmp").mkdir()
    r = device_run(tmp_path / "out", "--plan", tmp_path=tmp_path, env={"BUDGET": budget})
    refused(r, "BUDGET")


@pytest.mark.parametrize("out, says", [("", "OUT"), ("FILE/below", "is a file")])
def test_an_out_that_cannot_be_a_folder_is_refused(tmp_path, out, says):  # item 21
    (tmp_path / "tmp").mkdir()
    (tmp_path / "FILE").write_text("x")
    arg = str(tmp_path / out) if out else ""
    refused(device_run(arg, "--tiny", "--plan", tmp_path=tmp_path), says)
    assert (tmp_path / "FILE").read_text() == "x"


def test_a_run_refused_for_its_data_creates_no_out(tmp_path):  # item 21
    (tmp_path / "tmp").mkdir()
    r = device_run(tmp_path / "out", tmp_path=tmp_path, env={"CIFAR10": ""})
    refused(r, "CIFAR10")
    assert not (tmp_path / "out").exists()
    r = device_run(tmp_path / "out", tmp_path=tmp_path, env={"CIFAR10": str(tmp_path / "missing.tar.gz")})
    refused(r, "no such")
    assert not (tmp_path / "out").exists()


def test_relative_paths_are_the_callers(tmp_path):  # item 12: read from where the command was typed
    (tmp_path / "tmp").mkdir()
    (tmp_path / "FILE").write_text("x")
    refused(device_run("FILE", "--tiny", "--plan", tmp_path=tmp_path, cwd=tmp_path), "is a file")
    (tmp_path / "prev").mkdir()
    tarball(tmp_path / "prev" / "results.tar.gz", [steps_member()])
    r = device_run("out", "--plan", "--continue", "prev/results.tar.gz", tmp_path=tmp_path, cwd=tmp_path)
    assert r.returncode == 0 and "Kept from earlier leases (finished, not run again): parity" in r.stdout, r.stderr


def earlier_lease(out):
    out.mkdir()
    for name, data in (("results.tar.gz", b"lease 1's results"), ("state.tar.gz.1", b"lease 1's state"),
                       ("device_run.log", b"lease 1's log\n")):
        (out / name).write_bytes(data)
    return {p.name: p.read_bytes() for p in out.iterdir()}


def test_an_out_holding_an_earlier_lease_is_never_overwritten(tmp_path):  # item 2
    (tmp_path / "tmp").mkdir()
    out = tmp_path / "out"
    kept = earlier_lease(out)
    r = device_run(out, "--tiny", tmp_path=tmp_path, env={"BUDGET": "45"}, timeout=300)
    refused(r, "--continue")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == kept


def wait_for(path, text, timeout=300):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if os.path.exists(path) and text in open(path, errors="replace").read():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow  # a tiny lease up to its first training step (a few seconds of imports)
def test_a_lease_stopped_by_sigterm_packs_what_it_has(tmp_path):  # item 3
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    tmp.mkdir()
    from tests.conftest import REPO
    env = dict(os.environ, PYTHON=__import__("sys").executable, OMP_NUM_THREADS="1", TMPDIR=str(tmp))
    proc = subprocess.Popen(["bash", "benchmarks/device_run.sh", str(out), "--tiny", "--assume",
                             "parity=99999,speed=99999"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(out / "device_run.log", "main-flax: start"), "main-flax never started"
        time.sleep(3)  # inside the training command
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    log = open(out / "device_run.log").read()
    assert "stopped by SIGTERM" in log, log
    with tarfile.open(out / "results.tar.gz") as tar:
        records = json.load(tar.extractfile("./steps.json"))["records"]
    last = [r for r in records if r["name"] == "main-flax"][-1]
    assert last["status"] == "cut" and "stopped by signal" in last["detail"], last
    assert work_folders_left(tmp_path) == []
