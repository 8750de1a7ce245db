"""The device run's programme: its steps in the order a reader needs them, for a GPU (the H200
programme) and for `--tiny` (the same steps, small, on a CPU, planned as the H200's are: a tiny lease
holds the steps a GPU lease would). Each step carries what its cost estimate needs (benchmarks.device.plan)
and the command that runs it (benchmarks.device.run).

Lease 1 is the headline report: parity, one speed table of both frameworks, the Flax and the PyTorch main
jobs. The 300-epoch claims come from the Flax main job resumed to 300 epochs (long-flax, a copy, so the
100-epoch run keeps its best checkpoint and test evaluation); the variants and the sweep come after."""
from dataclasses import dataclass, field

SEEDS = "0,1,2,3,4,5,6,7"
SWEEP_RATES = "0,0.1,0.25,0.5,0.7"
MAIN, LONG = "convergence", "convergence-300"  # the main runs' folder, and the Flax run resumed to 300 epochs
# The headline table: Flax at 1, 16, 64 and 256 lanes beside the PyTorch engines that could be fastest there
# (batch 64, highest precision, the Dropout model; vmap where the CUDA graph of lanes, never run on a GPU yet,
# fails); their rows are also the calibration of lease 1: the engines the main jobs train with.
HEADLINE = ["flax-scan-matmul", "flax-scan-matmul-vmap16", "flax-scan-matmul-vmap64", "flax-scan-matmul-vmap256",
            "torch-cudagraph", "torch-cudagraph-vmap16", "torch-vmap16", "torch-cudagraph-vmap64", "torch-vmap64"]
# Variants, a later lease than the headline: each option once, at the main job's 16 lanes, beside the fastest
# PyTorch there (VARIANT@BATCH: at that batch only); one step, so one process per framework and flag set
VARIANTS = ["flax-scan-xla-vmap16", "flax-scan-matmul-vmap16-unroll4", "flax-scan-matmul-vmap16-donate",
            "flax-scan-matmul-vmap16-tf32", "torch-cudagraph-vmap16-tf32", "flax-scan-matmul-vmap16-cmdbuf",
            "flax-scan-matmul-vmap16@256", "flax-scan-matmul-vmap16-nochunk@256", "torch-cudagraph-vmap16@256"]
# --tiny: the fewest rows that answer "is Flax faster?" and exercise the engine choice (a CPU skips CUDA graphs)
TINY_HEADLINE = ["flax-scan-matmul-vmap2", "torch-vmap2", "torch-cudagraph-vmap2", "torch-cudagraph"]
TINY_VARIANTS = ["flax-scan-xla-vmap2", "flax-scan-matmul-vmap2-nochunk@64"]
SPEED_IMAGES, SPEED_REPEATS, SPEED_WINDOW_S, SPEED_TIMEOUT = 20480, 2, 1.0, 60
TORCH_ENGINE = {True: "vmap", False: "vmap-cudagraph"}  # main-torch's default (--tiny: no CUDA graphs on a CPU)


@dataclass
class Step:
    name: str
    kind: str  # parity, train, extend, speed, sweep (calibrate: inserted by the run, not in the programme)
    argv: list  # after the interpreter
    framework: str = "flax"
    lanes: int = 0
    epochs: int = 0
    batch: int = 64
    rows: list = field(default_factory=list)  # speed: its variants (VARIANT or VARIANT@BATCH)
    out: str = ""  # the folder under the work folder a training step trains in (its resume files)
    tiny: bool = False
    eval_train: bool = False  # the training set measured in eval mode after each epoch (claim c1e)
    after: str = ""  # a step that must have finished first
    later_than: str = ""  # a step that must have finished in an earlier lease
    source: str = ""  # extend: the finished run it resumes (a copy of it)
    reuses: int = 0  # sweep: lanes taken from the main run instead of trained
    sizes: "Step | None" = None  # a tiny step's H200 namesake: what the plan sizes it as


def speed_argv(rows, tiny, out="speed"):
    """benchmarks.runners.speed over `rows` (VARIANT or VARIANT@BATCH), merged into OUT/speed.json."""
    dev = "cpu" if tiny else "gpu"
    return ["-m", "benchmarks.runners.speed", "--device", dev, "--models", "dropout", "--batches", "32" if tiny
            else "64", "--images", str(256 if tiny else SPEED_IMAGES), "--repeats", str(SPEED_REPEATS),
            "--window", str(0.2 if tiny else SPEED_WINDOW_S), "--rounds", "1", "--timeout",
            str(10 * SPEED_TIMEOUT if tiny else SPEED_TIMEOUT), "--variants", ",".join(rows), "--merge", "--out", out]


# A lease's calibration: the engines its training steps use, timed briefly (a speed row each, its own table)
CALIBRATE = {False: {"flax": ["flax-scan-matmul-vmap16"], "torch": ["torch-cudagraph-vmap16", "torch-cudagraph"]},
             True: {"flax": ["flax-scan-matmul-vmap2"], "torch": ["torch-cudagraph-vmap2", "torch-cudagraph",
                                                                   "torch-vmap2"]}}
ENGINE_VARIANT = {False: {"vmap-cudagraph": "torch-cudagraph-vmap16", "cudagraph": "torch-cudagraph",
                          "vmap": "torch-vmap16"},
                  True: {"vmap-cudagraph": "torch-cudagraph-vmap2", "cudagraph": "torch-cudagraph",
                         "vmap": "torch-vmap2"}}


def calibration(frameworks, tiny, engine=None):
    """The calibration step of a lease whose training steps use `frameworks`; PyTorch's `engine` once
    chosen (else both candidates). Planned as its H200 namesake."""
    rows = [r for fw in ("flax", "torch") if fw in frameworks for r in (
        [ENGINE_VARIANT[tiny][engine]] if fw == "torch" and engine else CALIBRATE[tiny][fw])]
    step = Step("calibrate", "calibrate", speed_argv(rows, tiny, out="calibration"), rows=rows, tiny=tiny,
                batch=32 if tiny else 64)
    step.sizes = calibration(frameworks, False, engine) if tiny else None
    return step


def programme(tiny, data="$CIFAR10"):
    """Every step of the run, in order. Paths are relative to the work folder the steps run in (parity
    runs in the repository), so no machine's folder names reach the results."""
    dev = "cpu" if tiny else "gpu"
    seeds, epochs, long_epochs = ("0,1", 2, 3) if tiny else (SEEDS, 100, 300)
    n_seeds = len(seeds.split(","))
    parity = ["-m", "pytest", "parity_tests", "-q", "-p", "no:cacheprovider", "--device", dev]
    if tiny:
        parity += ["-m", "not slow", "-k", "structure_and_round_trips and baseline"]  # one check, no real data
    steps = [Step("parity", "parity", parity, tiny=tiny)]

    def speed(name, rows):
        return Step(name, "speed", speed_argv(rows, tiny), rows=list(rows), tiny=tiny, batch=32 if tiny else 64)

    def convergence(name, fw, extra, eval_train=False):
        argv = ["-m", "benchmarks.runners.convergence", "--frameworks", fw, "--seeds", seeds, "--epochs", str(epochs),
                "--data", data, "--out", MAIN, f"--{fw}-args", extra + (" --eval-train" if eval_train else "")]
        return Step(name, "train", argv, framework=fw, lanes=2 * n_seeds, epochs=epochs, out=f"{MAIN}/{fw}", tiny=tiny,
                    eval_train=eval_train)

    steps.append(speed("speed", TINY_HEADLINE if tiny else HEADLINE))
    # Flax's runs also measure the training set in eval mode (c1e; a sixth of their epoch time on the H200)
    steps.append(convergence("main-flax", "flax", f"--device {dev}", eval_train=True))
    # PyTorch's fastest engine for lanes, unless the calibration finds the single-lane CUDA graph faster
    steps.append(convergence("main-torch", "torch", f"--device {dev} --engine {TORCH_ENGINE[tiny]}"))
    extend = ["-m", "benchmarks.device.extend", "--source", f"{MAIN}/flax", "--out", LONG, "--seeds", seeds,
              "--epochs", str(long_epochs), "--data", data, "--device", dev]
    steps.append(Step("long-flax", "extend", extend, lanes=2 * n_seeds, epochs=long_epochs, out=f"{LONG}/flax",
                      tiny=tiny, eval_train=True, after="main-flax", source=f"{MAIN}/flax"))
    rates = "0,0.25,0.5" if tiny else SWEEP_RATES
    sweep_epochs = epochs  # the main runs' length, so batch 64 takes their lanes (rates 0 and 0.5)
    lanes = len(rates.split(",")) * n_seeds

    def sweep(batch):
        # device_run adds the batch sizes already finished (reused, not trained), so sweep.json covers them all
        argv = ["-m", "benchmarks.runners.sweep", "--batches", str(batch), "--rates", rates, "--seeds", seeds,
                "--epochs", str(sweep_epochs), "--data", data, "--out", "sweep", "--reuse", MAIN,
                "--flax-args", f"--device {dev}"]
        reused = 2 * n_seeds if batch == 64 else 0  # the main runs' BaseLine (rate 0) and Dropout (0.5) lanes
        return Step(f"sweep-b{batch}", "sweep", argv, lanes=lanes - reused, epochs=sweep_epochs, batch=batch,
                    out=f"sweep/batch_{batch}", tiny=tiny, reuses=reused)

    # in the order that packs the leases after the first (benchmarks.device.plan fills each lease in this order)
    variants = speed("speed-variants", TINY_VARIANTS if tiny else VARIANTS)
    variants.later_than = "speed"
    steps += [sweep(64), sweep(32), variants, sweep(128)]
    if not tiny:
        steps += [sweep(256), sweep(512)]
    else:  # each planned as its H200 namesake, so a tiny lease holds the steps a GPU lease would
        h200 = {s.name: s for s in programme(False)}
        for step in steps:
            step.sizes = h200[step.name]
    return steps


def sized(step):
    """The H200 step a step is planned as (itself, or a tiny step's namesake)."""
    return step.sizes or step


def by_name(name, tiny=False):
    return next(s for s in programme(tiny) if s.name == name)
