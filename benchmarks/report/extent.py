"""How far a run got against what it planned, and the sentences that say so.

A run cut by a time cap or a failed command has fewer epochs than its settings asked for. The
report judges nothing the run did not reach: each number or verdict that needs a later epoch is
replaced by the sentence `not_reached` writes. A run's planned last epoch is its settings'
`epochs` (history.json's `config`); made-up histories without settings planned what they have.
"""

NO_REASON = "cause not recorded"


def extent(histories):
    """{'reached': the last epoch every seed finished, 'planned': the last epoch the run asked for}."""
    if not histories:
        raise ValueError("no histories to measure")
    reached = min(len(h["epochs"]) for h in histories)
    planned = max(int(h.get("config", {}).get("epochs", len(h["epochs"]))) for h in histories)
    return {"reached": reached, "planned": max(planned, reached)}


def cut(ext):
    return ext["reached"] < ext["planned"]


def of(ext):
    """'10 of 100 epochs', or '100 epochs' for a run that finished."""
    return f"{ext['reached']} of {ext['planned']} epochs" if cut(ext) else f"{ext['reached']} epochs"


def stopped_line(name, seeds, ext, why):
    """The header's line for a run that stopped early: where and why."""
    return f"{name}, {seeds} seeds: {of(ext)}, stopped ({why or NO_REASON})"


def not_reached(need, ext, why=None):
    """Why a number or verdict that needs epoch `need` is not given."""
    return (f"not reached: needs epoch {need}; the run stopped at epoch {ext['reached']} of {ext['planned']} "
            f"({why or NO_REASON})")
