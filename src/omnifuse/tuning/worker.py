"""Entry point of a spawned ``omnifuse tune`` worker: ``python -m omnifuse.tuning.worker INDEX``, with the
``WorkerJob`` as JSON on stdin (written by ``omnifuse.tuning.study.spawn_worker``, read by
``job_from_json``)."""

from __future__ import annotations

import sys

from omnifuse.tuning.study import job_from_json, worker_main


def main() -> None:
    """Reads the job from stdin and runs worker INDEX (the first argument)."""
    job = job_from_json(sys.stdin.buffer.read().decode("utf-8"))
    worker_main(job, int(sys.argv[1]))


if __name__ == "__main__":
    main()
