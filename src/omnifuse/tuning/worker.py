"""Entry point of a spawned ``omnifuse tune`` worker: ``python -m omnifuse.tuning.worker INDEX``, with the
pickled ``WorkerJob`` on stdin (written by ``omnifuse.tuning.study.spawn_worker``)."""

from __future__ import annotations

import pickle
import sys

from omnifuse.tuning.study import worker_main


def main() -> None:
    """Reads the job from stdin and runs worker INDEX (the first argument)."""
    job = pickle.loads(sys.stdin.buffer.read())  # written by the parent process, never by a user
    worker_main(job, int(sys.argv[1]))


if __name__ == "__main__":
    main()
