"""The layout a newcomer relies on: benchmarks/ is three programs (runners/, report/, device/) and one
shared reader of results folders (benchmarks/folders.py); the report and the device run never import a
runner to read results."""
import ast
import os

from tests.conftest import REPO


def imports_of(path):
    tree = ast.parse(open(path).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


def modules_under(*parts):
    root = os.path.join(REPO, *parts)
    if root.endswith(".py"):
        return [root]
    return [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith(".py")]


def test_the_report_and_the_device_run_import_no_runner():
    offenders = [(os.path.relpath(p, REPO), m) for p in modules_under("benchmarks", "report")
                 + modules_under("benchmarks", "device") + modules_under("benchmarks", "folders.py")
                 for m in imports_of(p) if m.startswith("benchmarks.runners")]
    assert offenders == []


def test_the_import_check_sees_a_runner_import(tmp_path):  # control: the walk above would see one
    bad = tmp_path / "bad.py"
    bad.write_text("from benchmarks.runners.convergence import seed_dir\nimport benchmarks.runners.speed\n")
    assert list(imports_of(str(bad))) == ["benchmarks.runners.convergence", "benchmarks.runners.speed"]


def test_benchmarks_holds_three_programs_and_one_shared_reader():
    here = os.path.join(REPO, "benchmarks")
    packages = sorted(d for d in os.listdir(here) if os.path.isfile(os.path.join(here, d, "__init__.py")))
    modules = sorted(f for f in os.listdir(here) if f.endswith(".py") and f != "__init__.py")
    assert packages == ["device", "report", "runners"] and modules == ["folders.py"]


def attribute_assignments(source):
    """The `obj.attr = ...` targets (tuples unpacked) of a module's code."""
    found = []
    for node in ast.walk(ast.parse(source)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, (ast.AugAssign, ast.AnnAssign)) else []
        for t in targets:
            for x in (t.elts if isinstance(t, ast.Tuple) else [t]):
                if isinstance(x, ast.Attribute):
                    found.append(ast.unparse(x))
    return found


def test_the_loop_sets_no_attribute_of_another_object_and_asks_no_hasattr():
    source = open(os.path.join(REPO, "experiment", "loop.py")).read()
    assert attribute_assignments(source) == []
    shared = [open(p).read() for p in modules_under("experiment")]
    assert not [s for s in shared if "hasattr(run" in s or "hasattr(trainer" in s]


def test_the_attribute_check_sees_one():  # control
    assert attribute_assignments("a.b = 1\nc.d, e = 2, 3\nf.g += 1\nh = 4\n") == ["a.b", "c.d", "f.g"]
