"""Compiling: JAX's persistent compilation cache under the project's cache folder (a second run of
the same command loads its programs from disk instead of compiling them), and what compiling cost
a run, as JAX reports it, for history.json.

Turn the cache off with --no-compile-cache or LENET_COMPILE_CACHE=0; LENET_COMPILE_CACHE=FOLDER puts
it elsewhere.
"""
import os
import sys
import threading

import jax
import jax.monitoring

from experiment.data import cache_dir

CACHE_ENV = "LENET_COMPILE_CACHE"
CACHE_SUFFIX = "-cache"  # JAX's name for an entry's file: <key>-cache
WARNED = set()  # cache folders already said to be unusable
# Tracing, lowering and XLA's compilation, as jax.monitoring reports their durations.
COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
                  "/jax/core/compile/backend_compile_duration")
CACHE_EVENTS = {"/jax/compilation_cache/cache_hits": "cache_hits",
                "/jax/compilation_cache/cache_misses": "cache_misses"}


def enable_cache(wanted=True):
    """Point JAX's persistent cache at <cache folder>/jax-compile (every program, however fast to
    compile); returns the folder, or None when it is off (said once, on stderr, when it is off
    because the folder cannot be used)."""
    setting = os.environ.get(CACHE_ENV, "")
    if not wanted or setting == "0":
        return None
    folder = setting or os.path.join(cache_dir(), "jax-compile")
    try:
        os.makedirs(folder, exist_ok=True)
        heal(folder)
    except OSError as e:  # an unusable cache only costs compile time
        if folder not in WARNED:
            WARNED.add(folder)
            print(f"warning: compile cache {folder} cannot be used ({e.strerror or e}); compiling without it",
                  file=sys.stderr)
        return None
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return folder


def heal(folder):
    """Remove entries that cannot be read (cut short by a kill, or 0 bytes from a full disk): JAX
    warns and recompiles, but never writes an entry whose file exists, so a damaged one would cost
    a compile on every run for ever."""
    from jax._src.compilation_cache import decompress_executable  # how JAX itself reads an entry
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if not name.endswith(CACHE_SUFFIX) or not os.path.isfile(path):
            continue
        try:
            with open(path, "rb") as f:
                decompress_executable(f.read())
        except Exception:  # any reason it cannot be read is a reason to compile it again  # noqa: BLE001
            os.remove(path)


class CompileStats:
    """Process-wide totals of compile seconds and cache hits/misses; since(start) gives a run's share."""

    def __init__(self):
        self.lock, self.totals = threading.Lock(), {"seconds": 0.0, "cache_hits": 0, "cache_misses": 0}
        jax.monitoring.register_event_duration_secs_listener(self._duration)
        jax.monitoring.register_event_listener(self._event)

    def _duration(self, event, duration, **_):
        if event in COMPILE_EVENTS:
            with self.lock:
                self.totals["seconds"] += duration

    def _event(self, event, **_):
        if event in CACHE_EVENTS:
            with self.lock:
                self.totals[CACHE_EVENTS[event]] += 1

    def snapshot(self):
        with self.lock:
            return dict(self.totals)

    def since(self, start):
        now = self.snapshot()
        return {k: round(now[k] - start[k], 3) if k == "seconds" else now[k] - start[k] for k in now}


STATS = CompileStats()
