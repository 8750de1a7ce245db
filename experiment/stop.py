"""Stop signals, answered at once: Ctrl-C; SIGTERM from `docker stop`, Kubernetes or Slurm; SIGHUP
when the terminal goes away. Each is treated as Ctrl-C and ends with the shell's code for it
(128 + the signal).

Python runs a signal handler on the main thread only, between bytecodes: while the main thread
waits inside C code (a JAX wait, a PyTorch op, a compilation) a handler would run seconds or
minutes late. So the handler here does nothing; the C-level part of Python's handling writes the
signal's number to a wakeup pipe (signal.set_wakeup_fd) from whichever thread the kernel chose, and
a watcher thread reading that pipe answers at once:

- first signal during training: it says so and sets `requested`. The main thread stops at the next
  safe point: a batch-by-batch engine between two batches, a trainer that queues whole epochs as
  soon as it is waiting for one (experiment.loop). The epoch in progress is dropped (a resumed run
  redoes it from its start, exactly); finished epochs' queued writes are flushed.
- a second signal, or any before training: it stops the process at once (os._exit), after
  removing what a run that has not started created. Every file is written atomically and the train
  state last, so the last committed epoch is on disk, as after a kill.
"""
import os
import signal
import sys
import threading

from experiment.errors import Interrupted

STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


class Abandoned(Exception):
    """The epoch in progress was dropped because a stop was requested (experiment.loop)."""


_ACTIVE = []  # the StopRequest that owns this process's stop signals, while one does


def current():
    """The StopRequest that owns this process's stop signals, or an inert one (never requested; run(fn)
    is fn()) when none does: a trainer or loop used outside a train command."""
    return _ACTIVE[-1] if _ACTIVE else StopRequest()


class StopRequest:
    """Owns the stop signals while a train command runs (only on the main thread: elsewhere it
    leaves signals alone and never requests a stop), and every fact a stop needs; the loop, the
    command and the records tell it what happens through its methods.

    requested   a stop was asked for (the first signal during training)
    signum      the first signal (the exit code is 128 + it)
    training    the loop is training: a first signal stops at the next safe point, not at once
    started     this run's run.json is written, so --resume can continue it
    saved       the last epoch whose train state is on disk (of the trainer now training)
    earlier     an earlier trainer of the run finished (its epochs are saved)
    epoch       the epoch the main thread is training or waiting for
    at_exit     what a stop at once does before it exits (the folder lock's cleanup)
    """

    def __init__(self, log=print, prog=None):
        self.log, self.prog, self.resume_cmd = log, prog, None
        self.requested, self.signum, self.installed = False, None, False
        self.training = self.started = self.earlier = False
        self.saved, self.epoch, self.at_exit = None, None, []
        self.changed = threading.Condition()  # notified when a stop is requested
        self.previous, self.previous_fd, self.pipe = {}, None, None

    # What the command, the loop and the records tell it.
    def resume_with(self, command):
        """The command that continues this run, named when it stops."""
        self.resume_cmd = command

    def on_exit(self, cleanup):
        """Run `cleanup` before a stop at once exits the process."""
        self.at_exit.append(cleanup)

    def run_started(self):
        """run.json is written: --resume can continue the run from here on."""
        self.started = True

    def training_from(self, saved):
        """The loop trains a trainer whose epochs up to `saved` are on disk; Interrupted at once if a
        stop was requested while an earlier trainer of the run finished (its epochs are saved)."""
        self.training, self.saved = True, saved
        if self.requested:
            raise self.interrupted()

    def at_epoch(self, epoch):
        """The main thread trains (or waits for) this epoch."""
        self.epoch = epoch

    def trainer_finished(self):
        self.earlier = True

    def __enter__(self):
        if threading.current_thread() is not threading.main_thread():
            return self
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)  # the C handler must never block
        self.pipe = (read_fd, write_fd)
        self.previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        for sig in STOP_SIGNALS:
            self.previous[sig] = signal.signal(sig, self._main_thread_handler)
        threading.Thread(target=self._watch, args=(read_fd,), name="stop-signals", daemon=True).start()
        self.installed = True
        _ACTIVE.append(self)
        return self

    def __exit__(self, *exc):
        if not self.installed:
            return False
        _ACTIVE.remove(self)
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(self.previous_fd)
        os.close(self.pipe[1])  # the watcher reads the end of the pipe and returns
        self.installed = False
        return False

    @staticmethod
    def _main_thread_handler(signum, frame):
        """Nothing to do here: the watcher thread has already answered."""

    def _watch(self, read_fd):
        try:
            while data := os.read(read_fd, 64):
                for signum in data:
                    if signum in STOP_SIGNALS:
                        self._answer(signum)
        finally:
            os.close(read_fd)

    def _answer(self, signum):
        with self.changed:
            first = not self.requested
            self.signum = self.signum or signum
            self.requested = True
            self.changed.notify_all()
        if first and self.training:
            self.log(f"{signal.Signals(signum).name}: stopping; finished epochs are saved, the epoch in progress is "
                     f"dropped and redone by --resume (send it again, or Ctrl-C, to stop at once)")
            sys.stdout.flush()
        else:
            self.stop_now()

    def interrupted(self, saved=None, during=None):
        """The Interrupted the run ends with, its message naming the resume command. `saved`: the
        last epoch that is on disk once the queued writes are flushed (default: the last committed)."""
        saved = self.saved if saved is None else saved
        if not saved and self.earlier:
            saved = None  # an earlier trainer's epochs: "finished epochs are saved"
        return Interrupted(saved if self.training else None, during=during, signum=self.signum,
                           started=self.started, exit_now=self.installed).with_command(self.resume_cmd)

    def stop_now(self):
        """Exit the process now, from the watcher thread, whatever the main thread is doing."""
        e = self.interrupted(during=self.epoch if self.training else None)
        for cleanup in self.at_exit:
            try:
                cleanup()
            except Exception:  # noqa: BLE001  (exiting regardless)
                pass
        try:
            sys.stdout.flush()
        except Exception:  # noqa: BLE001
            pass
        os.write(2, f"{self.prog}: stopped: {e}\n".encode(errors="replace"))
        os._exit(e.code)

    def commit(self, epoch):
        """Called (on the writer's thread) once an epoch's train state is on disk."""
        self.saved = epoch

    def run(self, fn):
        """fn() on a helper thread: its result, or Abandoned as soon as a stop is requested (fn then
        goes on unwatched; the process exits without waiting for it). For waits inside C code that
        cannot be interrupted: a queued device computation, a compilation."""
        if not self.installed:
            return fn()
        box = []

        def work():
            try:
                box.append((True, fn()))
            except BaseException as e:  # noqa: BLE001  (raised again on the main thread)
                box.append((False, e))
            with self.changed:
                self.changed.notify_all()

        threading.Thread(target=work, name="device-wait", daemon=True).start()
        with self.changed:
            self.changed.wait_for(lambda: box or self.requested)
        if not box:
            raise Abandoned
        ok, value = box[0]
        if ok:
            return value
        raise value
