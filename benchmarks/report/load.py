"""Everything a report is built from, read once from the folders its flags name (benchmarks.folders
says what each holds). Reading only: build.py computes, the section modules render."""
import os
from dataclasses import dataclass

from benchmarks.folders import frameworks_of, histories_of, read_json, sweep_lanes


@dataclass
class Sweep:
    folder: str
    summary: dict            # sweep.json
    lanes: dict              # {batch size: [histories of its lanes]}


@dataclass
class Inputs:
    conv: dict               # convergence.json
    frameworks: list         # those it summarises, flax first
    hs: dict                 # {framework: {model: [histories of its seeds]}}
    sweep: "Sweep | None"
    speed: dict | None       # speed.json
    wall_md: str | None      # wall.md
    notes: str | None        # a Markdown file included as it is
    commands: list           # the commands that made every input, in order


def load_inputs(a):
    """The report's inputs from its parsed flags (a: --convergence, --sweep, --speed, --wall, --notes,
    --eval-train)."""
    conv = read_json(a.convergence, "convergence.json")
    frameworks = frameworks_of(conv)
    commands = [conv["command"]] + [read_json(d, f)["command"] for d, f in
                                     ((a.eval_train, "convergence.json"), (a.sweep, "sweep.json"),
                                      (a.speed, "speed.json")) if d]
    if a.wall:
        commands.append(read_json(a.wall, "wall.json")["invocation"])
    return Inputs(conv=conv, frameworks=frameworks, hs=histories_of(a.convergence, conv, frameworks),
                  sweep=load_sweep(a.sweep) if a.sweep else None,
                  speed=read_json(a.speed, "speed.json") if a.speed else None,
                  wall_md=read_text(os.path.join(a.wall, "wall.md")) if a.wall else None,
                  notes=read_text(a.notes).strip() if a.notes else None, commands=commands)


def load_sweep(folder):
    sw = read_json(folder, "sweep.json")
    return Sweep(folder, sw, sweep_lanes(folder, sw))


def read_text(path):
    with open(path) as f:
        return f.read()
