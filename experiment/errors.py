"""Every way a command stops early, each reported as one line with its own exit code:

    UserError    bad input (data, flags, checkpoints, output folder)   exit 2
    Diverged     the loss became NaN or Inf                            exit 3
    Interrupted  Ctrl-C, SIGTERM, SIGHUP; the last finished epoch      exit 128 + the signal: 130 (SIGINT),
                 is saved                                                143 (SIGTERM), 129 (SIGHUP)
"""
import functools
import os
import sys


class Stop(Exception):
    code = 1


class UserError(Stop):
    """Bad input (data, flags, checkpoints): printed as one line, exit code 2, no traceback."""
    code = 2


class Diverged(Stop):
    """A non-finite training loss. Raised by a trainer with the lane and step; the loop adds the epoch."""
    code = 3

    def __init__(self, lane, step, value, message=None):
        self.lane, self.step, self.value = lane, step, value
        super().__init__(message or f"loss became {value} at step {step}")

    def at(self, epoch, out_dir, seed):
        kept = "no epoch had finished, nothing was saved" if epoch == 1 else \
            f"the last good checkpoint (epoch {epoch - 1}) is kept in {out_dir}"
        return Diverged(self.lane, self.step, self.value,
                        f"loss became {self.value} at epoch {epoch}, step {self.step} (seed {seed}); {kept}; "
                        f"try a smaller --lr")


class Interrupted(Stop):
    """A stop signal. `saved_epoch` is the last epoch on disk; `during` the epoch that was cut short.
    `exit_now`: the process exits without waiting for work it dropped (a queued device computation
    would hold up Python's exit until it finished)."""
    code = 130  # 128 + SIGINT

    def __init__(self, saved_epoch, during=None, signum=None, started=True, exit_now=False):
        self.saved_epoch, self.during, self.started, self.exit_now = saved_epoch, during, started, exit_now
        if signum:
            self.code = 128 + signum
        super().__init__(f"interrupted after epoch {saved_epoch}")

    def explain(self, resume_command):
        if not self.started or resume_command is None:
            return "interrupted before training began; nothing was written"
        cut = f"during epoch {self.during}; " if self.during else ""
        if self.saved_epoch is None:
            saved = "finished epochs are saved"
        else:
            saved = f"epoch {self.saved_epoch} is saved" if self.saved_epoch else "no epoch had finished"
        return f"{cut}{saved}; continue with: {resume_command}"

    def with_command(self, resume_command):
        self.args = (self.explain(resume_command),)
        return self


def one_line(text):
    """The message with every unprintable character escaped: a file name holding a newline or a
    terminal escape sequence cannot break the one-line format or reach the terminal."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def exit_on_user_error(prog):
    """Decorate a CLI entry point so a Stop becomes `prog: error: msg` and its exit code."""

    def decorate(main):
        @functools.wraps(main)
        def wrapper(*args, **kwargs):
            try:
                return main(*args, **kwargs)
            except Stop as e:
                kind = "stopped" if isinstance(e, Interrupted) else "error"
                print(f"{prog}: {kind}: {one_line(str(e))}", file=sys.stderr)
                if getattr(e, "exit_now", False):
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(e.code)
                sys.exit(e.code)
            except KeyboardInterrupt:  # Ctrl-C before training started: nothing to save
                print(f"{prog}: stopped: interrupted", file=sys.stderr)
                sys.exit(Interrupted.code)

        return wrapper

    return decorate
