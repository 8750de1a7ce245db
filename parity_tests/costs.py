"""`pytest parity_tests --costs`: what each test costs in things that do not depend on the machine's
load: XLA compilations (each JAX program compiled, with its name and compile seconds), persistent
compile-cache hits, PyTorch trainers built, CUDA graphs captured and PyTorch Adam steps. Printed as a
table at the end of the session (and written as JSON with --costs-json FILE); parity_tests/COSTS.md turns
these counts into a GPU estimate."""
import json
import logging
import re
import time

import pytest

FINISHED = re.compile(r"Finished XLA compilation of jit\((.+)\) in ([0-9.e-]+) sec")


def is_program(name):
    """A compiled program of the project or of a test (a model's forward, gradient, training step or
    epoch), as opposed to one op run eagerly (jnp.ones, a transpose, a random draw), which JAX
    compiles once per shape: JAX names those after the library function or primitive."""
    import jax
    import jax.numpy as jnp
    from jax import lax
    return not (name.startswith("_") or any(hasattr(m, name) for m in (lax, jnp, jax.nn, jax.random))
                or name in ("reduce_window_max", "select_and_scatter_add", "reduce_window_sum"))


class CostCounter(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.rows, self.current, self.hit = {}, None, False

    def start(self, nodeid):
        self.current = self.rows.setdefault(nodeid, {"seconds": 0.0, "compiles": 0, "programs": [], "ops": [],
                                                     "compile_s": 0.0, "cache_hits": 0, "torch_trainers": 0,
                                                     "cuda_graphs": 0, "torch_steps": 0})
        self.t0 = time.perf_counter()

    def stop(self):
        self.current["seconds"] += time.perf_counter() - self.t0
        self.current = None

    def add(self, key, n=1):
        if self.current is not None:
            self.current[key] += n

    def cache_hit(self):
        self.add("cache_hits")
        self.hit = True  # JAX logs the load that follows as a compilation: not counted as one

    def emit(self, record):
        m = FINISHED.search(record.getMessage())
        if m and self.current is not None:
            name, s = m.group(1), float(m.group(2))
            if self.hit:
                self.hit = False
                return
            self.add("compiles")
            self.add("compile_s", s)
            self.current["programs" if is_program(name) else "ops"].append(f"{name} {s:.2f}s")


def install(config):
    import jax
    import jax.monitoring
    from torch.optim.optimizer import register_optimizer_step_post_hook

    from torch_ref.engines.graphs import GraphedStep
    from torch_ref.trainer import LaneTrainer

    counter = CostCounter()
    jax.config.update("jax_log_compiles", True)
    log = logging.getLogger("jax._src.dispatch")
    log.addHandler(counter)
    log.setLevel(logging.DEBUG)
    log.propagate = False  # counted here, not printed as warnings
    logging.getLogger("jax._src.interpreters.pxla").setLevel(logging.ERROR)
    jax.monitoring.register_event_listener(
        lambda e, **_: counter.cache_hit() if e == "/jax/compilation_cache/cache_hits" else None)
    register_optimizer_step_post_hook(lambda *_: counter.add("torch_steps"))

    def counting(cls, method, key):
        original = getattr(cls, method)

        def wrapped(self, *a, **k):
            counter.add(key)
            return original(self, *a, **k)
        setattr(cls, method, wrapped)

    counting(LaneTrainer, "__init__", "torch_trainers")
    counting(GraphedStep, "capture", "cuda_graphs")  # every CUDA-graph engine captures through it
    config._parity_costs = counter


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    counter = getattr(item.config, "_parity_costs", None)
    if counter is not None:
        counter.start(item.nodeid)
    yield
    if counter is not None:
        counter.stop()


def pytest_terminal_summary(terminalreporter, config):
    counter = getattr(config, "_parity_costs", None)
    if counter is None:
        return
    w = terminalreporter.write_line
    w("\nparity costs (compiles: all XLA compilations; progs: those of whole programs, not eager ops)")
    w(f"{'s':>7} {'compiles':>8} {'progs':>5} {'xla s':>6} {'hits':>4} {'trainers':>8} {'graphs':>6} "
      f"{'steps':>6}  test")
    total = {k: 0 for k in ("seconds", "compiles", "programs", "compile_s", "cache_hits", "torch_trainers",
                            "cuda_graphs", "torch_steps")}
    for nodeid, r in counter.rows.items():
        w(f"{r['seconds']:7.1f} {r['compiles']:8d} {len(r['programs']):5d} {r['compile_s']:6.1f} "
          f"{r['cache_hits']:4d} {r['torch_trainers']:8d} {r['cuda_graphs']:6d} {r['torch_steps']:6d}  "
          f"{nodeid.split('::', 1)[-1] if '::' in nodeid else nodeid}")
        for k in total:
            total[k] += len(r[k]) if k == "programs" else r[k]
    w(f"{total['seconds']:7.1f} {total['compiles']:8d} {total['programs']:5d} {total['compile_s']:6.1f} "
      f"{total['cache_hits']:4d} {total['torch_trainers']:8d} {total['cuda_graphs']:6d} {total['torch_steps']:6d}  "
      f"TOTAL")
    path = config.getoption("--costs-json")
    if path:
        with open(path, "w") as f:
            json.dump(counter.rows, f, indent=1)
