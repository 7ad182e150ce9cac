"""``luffy worker``: TaskIQ's worker processes, one process tree per queue.

Each queue gets TaskIQ's own process manager (``taskiq.cli.worker``): it starts ``processes``
children that read the queue's stream, restarts a child that dies, and on SIGTERM asks each
child to stop reading, finish its running tasks (up to ``LUFFY_WORKER_SHUTDOWN_SECONDS``) and
exit; whatever is still unfinished stays unacknowledged and is redelivered.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from taskiq.cli.common_args import LogLevel
from taskiq.cli.worker.args import WorkerArgs
from taskiq.cli.worker.process_manager import ProcessManager, ShutdownAction
from taskiq.cli.worker.run import start_listen

from luffy.settings import Settings, get_settings

TASK_MODULES = ("luffy.tasks.banner", "luffy.tasks.sms", "luffy.tasks.seckill", "luffy.tasks.order")
SHUTDOWN_GRACE_SECONDS = 5
LOG_FORMAT = "%(asctime)s %(levelname)-7s [%(processName)s] %(name)s: %(message)s"

logger = logging.getLogger("luffy.worker")


def task_modules() -> list[str]:
    """The task modules present in this installation."""
    return [name for name in TASK_MODULES if importlib.util.find_spec(name) is not None]


def import_task_modules() -> None:
    """Register every task with its broker (a task runs only where its module was imported)."""
    for name in task_modules():
        importlib.import_module(name)


class QueueProcessManager(ProcessManager):
    """TaskIQ's process manager, with a stop-signal handler that is safe to re-enter.

    TaskIQ's handler puts on a multiprocessing queue; a second signal arriving during that put
    (Ctrl-C reaches the whole process group while ``luffy worker`` forwards it too, systemd
    signals every process) deadlocks on the queue's lock. Only the first stop signal acts here.
    """

    def __init__(self, args: WorkerArgs) -> None:
        super().__init__(args=args, worker_function=start_listen)
        self._stop_requested = False
        signal.signal(signal.SIGINT, self._request_stop)
        signal.signal(signal.SIGTERM, self._request_stop)

    def _request_stop(self, signum: int, _frame: FrameType | None) -> None:
        if multiprocessing.current_process().name.startswith("worker"):
            # A worker child before TaskIQ installs its own handler: stop at once, as TaskIQ does.
            raise KeyboardInterrupt
        if self._stop_requested:
            return
        self._stop_requested = True
        logger.info("got %s: stopping the workers once their running tasks end", signal.Signals(signum).name)
        self.action_queue.put(ShutdownAction())


def run_queue_worker(queue: str, processes: int, settings: Settings) -> int:
    """Serve one queue with TaskIQ's worker until SIGTERM/SIGINT; returns the exit status."""
    args = WorkerArgs(
        broker=f"luffy.tasks.broker:{queue}_broker",
        modules=task_modules(),
        workers=processes,
        log_level=LogLevel[settings.log_level],
        log_format=LOG_FORMAT,
        wait_tasks_timeout=settings.worker_shutdown_seconds,
        shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
    )
    logging.basicConfig(level=settings.log_level, format=LOG_FORMAT)
    logging.getLogger("taskiq").setLevel(settings.log_level)
    logger.info("queue %s: starting %d worker process(es)", queue, processes)
    return QueueProcessManager(args).start() or 0


def _queue_worker_process(queue: str, processes: int) -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)
    sys.exit(run_queue_worker(queue, processes, get_settings()))


def run_workers(queues: Sequence[str], processes: int, settings: Settings) -> int:
    """Serve ``queues``: in this process for one queue, else one supervised child process per queue."""
    if len(queues) == 1:
        return run_queue_worker(queues[0], processes, settings)
    logging.basicConfig(level=settings.log_level, format=LOG_FORMAT)
    children = [
        multiprocessing.Process(target=_queue_worker_process, args=(queue, processes), name=f"queue-{queue}")
        for queue in queues
    ]
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:
            logger.info("got %s: stopping the queue workers", signal.Signals(signum).name)
        stopping = True
        for child in children:
            if child.pid is not None and child.exitcode is None:
                os.kill(child.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in children:
        child.start()
    logger.info("serving queues %s, %d process(es) each", ", ".join(queues), processes)
    running = list(children)
    while running:
        multiprocessing.connection.wait([child.sentinel for child in running])
        for child in [child for child in running if child.exitcode is not None]:
            running.remove(child)
            if not stopping:
                logger.error("%s exited unexpectedly (status %s); stopping the others", child.name, child.exitcode)
                stop(signal.SIGTERM, None)
    logger.info("queue workers stopped: %s", ", ".join(f"{child.name} {child.exitcode}" for child in children))
    return 0 if all(child.exitcode == 0 for child in children) else 1
