"""The stages of `srnet demo`, run one after another or in worker processes that split the CPU's threads.

Two 1-thread processes side by side train more per second than one process on two threads, because the small
matmuls, dropout and optimiser steps of the demo's model do not keep two threads busy (the timings are in
docs/measurements.md). So the demo runs independent stages two at a time, each on its share of the threads, starting
with the longest chain of work that waits on them.

A worker sends its progress to the parent over a queue; the parent writes it as `stage: message` lines (two live
progress bars cannot share one terminal). Ctrl-C and SIGTERM reach the parent, which stops the workers and re-raises;
a worker that fails sends its error back intact; a worker that dies (out of memory, a crash) is reported by stage.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_module
import signal
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srnet_cli.config.schema import FinetunePreset
from srnet_cli.engine.runs.context import Reporter, describe_info, is_line_due
from srnet_cli.engine.runs.devices import keep_freed_memory
from srnet_cli.errors import SrnetError
from srnet_cli.recipes.results import RunResults


@dataclass(frozen=True)
class Job:
    """One stage: an srnet run into `out_dir`, after the stages named in `needs` (it reads their outputs)."""

    name: str
    heading: str  # what the progress log calls it
    command: str
    preset: FinetunePreset
    out_dir: Path
    needs: tuple[str, ...] = ()
    steps: int = 1  # its training steps: the cost the schedule weighs (~0.5 s each on the demo's model)


Runner = Callable[[Job, str, Reporter], RunResults]  # (job, device, reporter) -> the recipe's results


def priorities(jobs: list[Job]) -> dict[str, int]:
    """Each job's steps plus those of the longest chain of jobs waiting on it: the one to start first is the one
    that holds up the most work behind it (in the demo, the lottery-ticket search before its retrain)."""
    names = {job.name for job in jobs}
    for job in jobs:
        missing = [n for n in job.needs if n not in names]
        if missing:
            raise ValueError(f"stage {job.name} needs {missing}, which are not stages of this run")
    by_name = {job.name: job for job in jobs}
    waiting = {job.name: [other.name for other in jobs if job.name in other.needs] for job in jobs}
    chain: dict[str, int] = {}

    def length(name: str) -> int:
        if name not in chain:
            chain[name] = by_name[name].steps + max((length(n) for n in waiting[name]), default=0)
        return chain[name]

    return {job.name: length(job.name) for job in jobs}


def next_ready(pending: list[Job], done: set[str], priority: dict[str, int]) -> Job | None:
    """The ready job (all it needs done) with the longest chain; ties go to the earlier one in plan order."""
    ready = [job for job in pending if set(job.needs) <= done]
    return max(ready, key=lambda job: priority[job.name]) if ready else None


def run_jobs(
    jobs: list[Job], runner: Runner, device: str, reporter: Reporter, workers: int = 1, threads: int = 1
) -> dict[str, tuple[RunResults, float]]:
    """Run every job (in plan order with one worker, by priority with more); return name -> (results, seconds)."""
    if workers <= 1:
        done: dict[str, tuple[RunResults, float]] = {}
        for job in jobs:
            reporter.log(job.heading)
            began = time.time()
            done[job.name] = (runner(job, device, reporter), round(time.time() - began, 1))
        return done
    return _Pool(jobs, runner, device, reporter, workers, threads).run()


class _Pool:
    def __init__(
        self, jobs: list[Job], runner: Runner, device: str, reporter: Reporter, workers: int, threads: int
    ) -> None:
        self.jobs, self.runner, self.device, self.workers = jobs, runner, device, workers
        self.priority = priorities(jobs)
        self.lines = StageLines(reporter)
        self.context = mp.get_context("spawn")  # a forked torch with live threads can hang; spawn is always safe
        self.messages = self.context.Queue()
        self.threads = threads
        self.pids: set[int] = set()

    def run(self) -> dict[str, tuple[RunResults, float]]:
        pool = ProcessPoolExecutor(
            self.workers, mp_context=self.context, initializer=_init_worker, initargs=(self.messages, self.threads)
        )
        try:
            done = self._schedule(pool)
        except BaseException:  # an error, Ctrl-C or SIGTERM: stop the other stages now, not when they end
            self._stop(pool)
            raise
        pool.shutdown(wait=True)
        self._drain(final=True)
        return done

    def _schedule(self, pool: ProcessPoolExecutor) -> dict[str, tuple[RunResults, float]]:
        pending = list(self.jobs)
        done: dict[str, tuple[RunResults, float]] = {}
        running: dict[Future, Job] = {}
        while pending or running:
            while len(running) < self.workers and (job := next_ready(pending, set(done), self.priority)):
                pending.remove(job)
                self.lines.reporter.log(f"{job.heading} (started)")
                running[pool.submit(_in_worker, self.runner, job, self.device)] = job
            finished, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
            self._drain()
            for future in finished:
                job = running.pop(future)
                try:
                    results, seconds = future.result()
                except BrokenProcessPool:
                    names = ", ".join(sorted(j.name for j in [job, *running.values()]))
                    raise SrnetError(
                        f"a demo worker process died while running {names} (killed by the system: out of memory?)",
                        "re-run with --workers 1, which runs one stage at a time in this process",
                    ) from None
                done[job.name] = (results, seconds)
                self._drain()
                self.lines.reporter.log(f"{job.name}: done in {seconds:.0f} s")
        return done

    def _drain(self, final: bool = False) -> None:
        while True:
            try:
                kind, name, args = self.messages.get(timeout=0.05) if final else self.messages.get_nowait()
            except queue_module.Empty:
                return
            if kind == "pid":
                self.pids.add(args)
            else:
                self.lines.show(name, kind, args)

    def _stop(self, pool: ProcessPoolExecutor) -> None:
        self._drain()
        # a worker still starting has not sent its pid yet: the executor's own table has it (CPython's private
        # `_processes`; without it, such a worker finishes its stage before shutdown returns)
        for pid in self.pids | set(getattr(pool, "_processes", None) or {}):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        pool.shutdown(wait=True, cancel_futures=True)


_messages: Any = None  # the worker's end of the progress queue


def _init_worker(messages: Any, threads: int) -> None:
    global _messages
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent decides
    _die_with_parent()
    keep_freed_memory()  # a spawned worker starts without its parent's allocator settings
    import torch

    torch.set_num_threads(threads)
    _messages = messages
    messages.put(("pid", "", os.getpid()))


def _die_with_parent() -> None:
    """Linux: SIGTERM this worker if the parent dies (kill -9 included), so no stage trains on unwatched."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _in_worker(runner: Runner, job: Job, device: str) -> tuple[RunResults, float]:
    from srnet_cli.engine.runs.lock import release_locks

    began, failed = time.time(), True
    try:
        results = runner(job, device, QueueReporter(_messages, job.name))
        failed = False
    finally:
        release_locks(failed)  # this worker runs other stages next: their directories are not its to hold
    return results, round(time.time() - began, 1)


class QueueReporter:
    """A worker's reporter: every event goes to the parent, tagged with the stage."""

    def __init__(self, messages: Any, name: str) -> None:
        self.messages, self.name = messages, name

    def start(self, total: int, description: str) -> None:
        self.messages.put(("start", self.name, (total, description)))

    def advance(self, n: int = 1, **info: Any) -> None:
        self.messages.put(("advance", self.name, (n, {k: _plain(v) for k, v in info.items()})))

    def log(self, message: str) -> None:
        self.messages.put(("log", self.name, message))

    def end(self) -> None:
        self.messages.put(("end", self.name, None))


def _plain(value: object) -> object:
    return value.item() if hasattr(value, "item") else value  # a tensor scalar pickles slowly and drags torch in


@dataclass
class _Task:
    description: str
    total: int
    done: int = 0


class StageLines:
    """Several stages' progress as lines: each stage's logs, and one line per 10% of its outermost task."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter
        self.tasks: dict[str, list[_Task]] = {}

    def show(self, name: str, kind: str, args: Any) -> None:
        stack = self.tasks.setdefault(name, [])
        if kind == "start":
            stack.append(_Task(args[1], args[0]))
        elif kind == "end" and stack:
            stack.pop()
        elif kind == "log":
            self.reporter.log(f"{name}: {args}")
        elif kind == "advance" and len(stack) == 1:  # an evaluation inside training draws no lines of its own
            task = stack[0]
            task.done += args[0]
            if is_line_due(task.done, task.total):
                self.reporter.log(f"{name}: {task.description} {task.done}/{task.total} {describe_info(args[1])}")
