"""The device run's programme: its steps in the order a reader needs them, for a GPU (the H200
programme) and for `--tiny` (the same steps, small, on a CPU). Each step carries what its cost
estimate needs (benchmarks.device.plan) and the command that runs it (benchmarks.device.run)."""
from dataclasses import dataclass, field

SEEDS = "0,1,2,3,4,5,6,7"
SWEEP_BATCHES = (64, 32, 128, 256, 512)  # 64 first: the tutorial's batch size
SWEEP_RATES = "0,0.1,0.25,0.5,0.7"
# (batch, lanes, precision) -> Flax variants first, then the PyTorch variants that could be fastest there.
# Option suffixes (unroll, cmdbuf, donate, nochunk) where they can matter: nochunk only above 64 images.
SPEED_PAIRS = [
    (64, 1, "highest", ["flax-scan-matmul", "flax-scan-xla", "flax-scan-matmul-unroll2", "flax-scan-matmul-unroll4",
                        "flax-scan-matmul-unroll8", "flax-scan-matmul-cmdbuf", "flax-scan-matmul-donate",
                        "torch-cudagraph"]),
    (64, 16, "highest", ["flax-scan-matmul-vmap16", "flax-scan-xla-vmap16", "flax-scan-matmul-vmap16-unroll2",
                         "flax-scan-matmul-vmap16-unroll4", "flax-scan-matmul-vmap16-unroll8",
                         "flax-scan-matmul-vmap16-cmdbuf", "flax-scan-matmul-vmap16-donate",
                         "torch-cudagraph-vmap16", "torch-vmap16"]),
    (64, 64, "highest", ["flax-scan-matmul-vmap64", "flax-scan-xla-vmap64", "torch-cudagraph-vmap64", "torch-vmap64"]),
    (256, 1, "highest", ["flax-scan-matmul", "flax-scan-matmul-nochunk", "flax-scan-xla", "torch-cudagraph"]),
    (256, 16, "highest", ["flax-scan-matmul-vmap16", "flax-scan-matmul-vmap16-nochunk", "torch-cudagraph-vmap16"]),
    (64, 1, "tf32", ["flax-scan-matmul-tf32", "flax-scan-xla-tf32", "torch-cudagraph-tf32"]),
    (64, 16, "tf32", ["flax-scan-matmul-vmap16-tf32", "flax-scan-xla-vmap16-tf32", "torch-cudagraph-vmap16-tf32"]),
]
# --tiny: two pairs, enough to show the table's Flax-vs-fastest-PyTorch column on a CPU
TINY_SPEED_PAIRS = [(32, 1, "highest", ["flax-scan-matmul", "torch-fast"]),
                    (32, 2, "highest", ["flax-scan-matmul-vmap2", "torch-vmap2"])]
SPEED_IMAGES, SPEED_REPEATS, SPEED_TIMEOUT = 20480, 2, 45  # --tiny: 4x the time-out (a shared CPU)
LANES_IMAGES, LANES_REPEATS = 2048, 2  # training images per lane per timed epoch; timed epochs


@dataclass
class Step:
    name: str
    kind: str  # parity, train, speed, lanes, sweep
    argv: list  # after the interpreter
    framework: str = "flax"
    lanes: int = 0
    epochs: int = 0
    batch: int = 64
    rows: list = field(default_factory=list)  # speed: variants; lanes: lane counts
    out: str = ""  # the folder under the work folder a training step trains in (its resume files)
    tiny: bool = False
    eval_train: bool = False  # the training set measured in eval mode after each epoch (claim c1e)


def programme(tiny, data="$CIFAR10"):
    """Every step of the run, in order. Paths are relative to the work folder the steps run in (parity
    runs in the repository), so no machine's folder names reach the results."""
    dev = "cpu" if tiny else "gpu"
    seeds, epochs, long_epochs = ("0,1", 2, 3) if tiny else (SEEDS, 100, 300)
    lanes = 2 * len(seeds.split(","))
    parity = ["-m", "pytest", "parity_tests", "-q", "-p", "no:cacheprovider", "--device", dev]
    if tiny:
        parity += ["-m", "not slow", "-k", "structure or logits or precision"]
    steps = [Step("parity", "parity", parity, tiny=tiny)]

    def convergence(name, fw, n_epochs, out, extra, eval_train=False):
        argv = ["-m", "benchmarks.runners.convergence", "--frameworks", fw, "--seeds", seeds, "--epochs", str(n_epochs),
                "--data", data, "--out", out, f"--{fw}-args", extra + (" --eval-train" if eval_train else "")]
        return Step(name, "train", argv, framework=fw, lanes=lanes, epochs=n_epochs, out=f"{out}/{fw}", tiny=tiny,
                    eval_train=eval_train)

    # Flax's runs also measure the training set in eval mode (c1e; a sixth of their epoch time on the H200)
    steps.append(convergence("main-flax", "flax", epochs, "convergence", f"--device {dev}", eval_train=True))
    for batch, n, precision, variants in (TINY_SPEED_PAIRS if tiny else SPEED_PAIRS):
        name = f"speed-b{batch}-l{n}" + ("-tf32" if precision == "tf32" else "")
        argv = ["-m", "benchmarks.runners.speed", "--device", dev, "--models", "dropout", "--batches", str(batch),
                "--images", str(256 if tiny else SPEED_IMAGES), "--repeats", str(SPEED_REPEATS), "--rounds", "1",
                "--timeout", str(4 * SPEED_TIMEOUT if tiny else SPEED_TIMEOUT), "--variants", ",".join(variants),
                "--merge", "--out", "speed"]  # every pair's rows in one table
        steps.append(Step(name, "speed", argv, batch=batch, lanes=n, rows=variants, tiny=tiny))
    lane_counts = [1, 2] if tiny else [1, 16, 64, 256, 512]
    steps.append(Step("lanes", "lanes", ["-m", "benchmarks.runners.wall", "--skip-command", "--device", dev, "--lanes",
                                         ",".join(map(str, lane_counts)), "--images", str(LANES_IMAGES),
                                         "--speed-repeats", str(LANES_REPEATS),
                                         "--out", "lanes"], rows=lane_counts, tiny=tiny))
    # PyTorch's fastest engine for lanes: one CUDA graph for all of them (the CPU has no CUDA graphs)
    steps.append(convergence("main-torch", "torch", epochs, "convergence",
                             f"--device {dev} --engine {'vmap' if tiny else 'vmap-cudagraph'}"))
    steps.append(convergence("long-flax", "flax", long_epochs, f"convergence-{long_epochs}", f"--device {dev}",
                             eval_train=True))
    batches = (64, 32) if tiny else SWEEP_BATCHES
    rates, sweep_epochs = ("0,0.5", 2) if tiny else (SWEEP_RATES, 100)
    for batch in batches:
        # device_run adds the batch sizes already finished (reused, not trained), so sweep.json covers them all
        argv = ["-m", "benchmarks.runners.sweep", "--batches", str(batch), "--rates", rates,
                "--seeds", seeds, "--epochs", str(sweep_epochs), "--data", data, "--out", "sweep",
                "--flax-args", f"--device {dev}"]
        steps.append(Step(f"sweep-b{batch}", "sweep", argv, lanes=len(rates.split(",")) * len(seeds.split(",")),
                          epochs=sweep_epochs, batch=batch, out=f"sweep/batch_{batch}", tiny=tiny))
    return steps
