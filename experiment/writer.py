"""Writes of checkpoints, histories and train states, in order, optionally on a background thread
so that the device trains the next epoch while the host writes this one's files.

Each write is still atomic (experiment.atomic) and they happen in the order they were submitted,
so the train state, submitted last for an epoch, is still the commit point. At most `depth` epochs
wait (bounded memory: each holds a snapshot of the lanes' state). A failed write stops all later
writes of the run (a train state must never follow a checkpoint that failed) and is raised on the
main thread at the next epoch boundary or when the writer closes, never lost.
"""
import queue
import threading


class Writer:
    """depth 0: every write runs at once on the caller's thread. depth >= 1: a background thread runs
    them; end_epoch() blocks while `depth` epochs are already waiting. Use as a context manager:
    leaving it (normally, on an error, on Ctrl-C or SIGTERM) flushes every queued write."""

    def __init__(self, depth=0):
        self.depth, self.batch = depth, []
        self.error, self.failed = None, False  # the first failure, to raise; whether one happened
        self.queue = queue.Queue(maxsize=depth) if depth else None
        self.thread = None

    def __enter__(self):
        if self.queue is not None:
            self.thread = threading.Thread(target=self._run, name="checkpoint-writer", daemon=True)
            self.thread.start()
        return self

    def submit(self, fn, *args):
        """Queue one write (run it now at depth 0)."""
        self.check()
        if self.queue is None:
            fn(*args)
        else:
            self.batch.append((fn, args))

    def end_epoch(self):
        """Hand this epoch's writes to the thread, waiting while `depth` epochs are queued."""
        if self.queue is not None and self.batch:
            batch, self.batch = self.batch, []
            self.queue.put(batch)
        self.check()

    def check(self):
        """Raise, on the caller's thread, a write that failed."""
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def __exit__(self, exc_type, exc, tb):
        if self.queue is not None:
            if self.batch:  # still written after an error or an interrupt: it is a finished epoch
                batch, self.batch = self.batch, []
                self.queue.put(batch)
            self.queue.put(None)
            self.thread.join()
        if self.error is not None:  # the files are not what the run claims: that is the news
            self.check()
        return False

    def _run(self):
        while (batch := self.queue.get()) is not None:
            for fn, args in batch:
                if not self.failed:
                    try:
                        fn(*args)
                    except BaseException as e:  # noqa: BLE001  (raised again on the main thread)
                        self.error, self.failed = e, True
