"""The machinery around the training loop of :mod:`nnimaging.train`.

What a long run on a shared machine needs and the book does not teach: several processes under
``torchrun`` (DistributedDataParallel; only rank 0 writes), the choice of device and of bf16
autocast, the run's log (``log.jsonl``), checkpoints by step and by time (their format:
:mod:`nnimaging.checkpoint`), a wall-clock budget (``--minutes``), SIGTERM and Ctrl-C stopping
between two steps with a checkpoint, weight snapshots, and at the end the weights with the
manifest entry that records how they were made (``--export``).

:func:`nnimaging.train.train` reads as the recipe; :class:`Run` is everything else.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from . import _checks, checkpoint, weightstore
from ._checks import UsageError
from .degrade import Degradation

__all__ = [
    "cpu_has_native_bf16",
    "use_bf16",
    "choose_device",
    "Processes",
    "Run",
    "TrainingInterrupted",
    "read_log_records",
    "training_record",
]


def _now() -> float:
    """Wall-clock seconds (one place, so that tests can replace the clock)."""
    return time.perf_counter()


# ----------------------------------------------------------------------------------------
# hardware: processes, device, precision
# ----------------------------------------------------------------------------------------


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16 or AMX tiles).

    Without those instructions PyTorch emulates bf16 and training is much slower than in float32
    (measured on a 2-core AVX2 AMD EPYC: 13x slower for the book's U-Net); with them, bf16
    autocast and channels_last train the book's networks 2-3x faster than float32.
    """
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def use_bf16(amp: str, device) -> bool:
    """Whether to train under bf16 autocast: ``amp`` is "bf16", "none" or "auto" (see ``--amp``)."""
    if amp not in ("auto", "bf16", "none"):
        raise ValueError(f"amp must be 'auto', 'bf16' or 'none', got {amp!r}")
    if amp != "auto":
        return amp == "bf16"
    return torch.device(device).type == "cuda" or (torch.device(device).type == "cpu" and cpu_has_native_bf16())


def choose_device(setting: str) -> torch.device:
    """The device of ``--device``: "auto" is this process's GPU if there is one, else the CPU.

    On CUDA, also lets cuDNN pick its fastest kernels and use TF32.
    """
    if setting == "auto":
        device = torch.device(f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(setting)
        if device.type == "cuda" and device.index is None:
            device = torch.device(f"cuda:{torch.cuda.current_device()}")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device


@dataclass
class Processes:
    """The processes that train together: one, or ``WORLD_SIZE`` of them under ``torchrun``."""

    world: int = 1
    rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        """Rank 0, the one process that writes files and prints."""
        return self.rank == 0

    @classmethod
    def start(cls, device_setting: str) -> Processes:
        """Read ``torchrun``'s environment and, with several processes, join their group (NCCL on GPUs)."""
        procs = cls(int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0")))
        if procs.distributed:
            if torch.cuda.is_available() and device_setting in ("auto", "cuda"):
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
                dist.init_process_group("nccl")
            else:
                dist.init_process_group("gloo")
        return procs

    def local_batch(self, batch_size: int) -> int:
        """Each process's share of a batch of ``batch_size`` patches."""
        if batch_size % self.world:
            raise UsageError(f"batch_size {batch_size} must be divisible by the number of processes {self.world}")
        return batch_size // self.world

    def wrap(self, model, device: torch.device, compile: bool):
        """The model the loop calls: under DistributedDataParallel and/or ``torch.compile`` as set."""
        if self.distributed:
            model = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None)
        if compile:
            model = torch.compile(model)
        return model

    def finish(self) -> None:
        """Wait for every process and leave the group."""
        if self.distributed:
            dist.barrier()
            dist.destroy_process_group()


# ----------------------------------------------------------------------------------------
# the run's log, its record and its end
# ----------------------------------------------------------------------------------------


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by SIGTERM or SIGINT after writing its checkpoint (``--resume`` continues it).

    A ``KeyboardInterrupt``, so code that catches Ctrl-C catches it; ``signum`` is the signal's number
    and the command line exits with status 128 + ``signum``.
    """

    def __init__(self, message: str, signum: int, step: int, checkpoint: Path):
        super().__init__(message)
        self.signum, self.step, self.checkpoint = signum, step, checkpoint


def read_log_records(path) -> list[dict]:
    """The records of a run's ``log.jsonl``, in order (one dict per line; see :mod:`nnimaging.train`).

    ``path`` is a run directory (``--out``) or the log file itself.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "log.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"no training log {path} (expected a run directory of nnimaging.train)")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _read_log_for_resume(path: Path, step: int) -> list[dict]:
    """The records of a run's log up to ``step`` (later ones are redone from the checkpoint).

    A last line cut by a crash of an older version is dropped; any other unreadable line is an error.
    """
    if not path.is_file():
        return []
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    records = []
    for i, line in enumerate(lines):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise UsageError(f"training log {path}, line {i + 1}, is not JSON: {line[:60]!r}") from None
    return [r for r in records if not isinstance(r.get("step"), int) or r["step"] <= step]


def training_record(
    cfg: dict, step: int, total: int, world: int, device: torch.device, val_psnr, elapsed_s: float | None = None
) -> dict:
    """How the weights were made, as their manifest entry records it (``entry["training"]``)."""
    noise = {"sigma": cfg["sigma"]} if cfg["sigma"] is not None else {"sigma_range": cfg["sigma_range"]}
    return {
        "degradation": Degradation(cfg["blur"], cfg["wiener_nsr"]).describe(),
        "dataset": cfg["data_dir"] or cfg["dataset"],
        "patch_size": cfg["patch_size"],
        "batch_size": cfg["batch_size"],
        "augment": "8 flips/rotations" if cfg["augment"] else "none",
        "noise": noise,
        "loss": "mse(output, clean)",
        "optimizer": "Adam",
        "lr": cfg["lr"],
        "lr_final": cfg["lr_final"],
        "schedule": cfg["schedule"],
        "warmup_steps": cfg["warmup_steps"],
        "weight_decay": cfg["weight_decay"],
        "steps": step,
        "total_steps": total,
        "completed": step >= total,
        "seed": cfg["seed"],
        "world_size": world,
        "device": (torch.cuda.get_device_name(device) if device.type == "cuda"
                   else f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"),
        "elapsed_s": None if elapsed_s is None else round(float(elapsed_s), 1),
        "amp": "bf16" if use_bf16(cfg["amp"], device) else "none",
        "compile": bool(cfg["compile"]),
        "torch": str(torch.__version__),
        "val": {"set": cfg["val_dir"] or cfg["val"], "count": cfg["val_count"], "sigma": cfg["val_sigma"], "psnr": val_psnr},
        "command": cfg["command"],
        **({"init": cfg["init_record"]} if cfg.get("init_record") else {}),
    }


# ----------------------------------------------------------------------------------------
# a run: progress, log, budget, checkpoints, signals, export
# ----------------------------------------------------------------------------------------


class Run:
    """A training run's state and files around the loop of :func:`nnimaging.train.train`.

    The loop reads ``step`` and ``total`` (the schedule's length, which a time budget may shorten),
    calls :meth:`continues` before each step and :meth:`after_step` after it, inside ``with run:``
    (which starts the clock and the log, catches SIGTERM and Ctrl-C, and writes a checkpoint when
    interrupted); :meth:`finish` then validates, writes the weights and returns the summary.

    Parameters
    ----------
    cfg : dict
        The checked settings (:func:`nnimaging.trainconfig.settings`).
    procs : Processes
    device : torch.device
    model : the plain model (not wrapped), optimizer, generator : what a checkpoint saves
    validate : callable
        ``validate() -> float | None``, the mean validation PSNR of ``model`` (None without images).
    """

    def __init__(self, cfg: dict, procs: Processes, device: torch.device, model, optimizer, generator, validate):
        self.cfg, self.procs, self.device = cfg, procs, device
        self.model, self.optimizer, self.generator, self.validate = model, optimizer, generator, validate
        self.out = Path(cfg["out"])
        self.ckpt_path = self.out / checkpoint.FILE
        self.log_path = self.out / "log.jsonl"
        self.step, self.total, self.fitted, self.elapsed_before = 0, cfg["max_steps"], False, 0.0
        self.interval = None  # the loss sum and count of the logging interval a checkpoint cut
        self.records: list[dict] = []
        self.last_loss = self.val_psnr = None
        self.stopped_by_time = False
        self.stop_signal = None
        budget = None if cfg["minutes"] is None else 60.0 * float(cfg["minutes"])
        self.budget = budget
        self.reserve = 0.0 if budget is None else min(60.0, 0.03 * budget + 5.0)  # time for validation and saving
        self.ckpt_period = None if cfg["ckpt_minutes"] is None else 60.0 * float(cfg["ckpt_minutes"])
        self.snap_period = None if cfg["snapshot_minutes"] is None else 60.0 * float(cfg["snapshot_minutes"])
        self.pbar = None
        self._handlers: dict = {}

    # -- start -----------------------------------------------------------------------------

    def resume(self, ckpt: dict | None) -> None:
        """Continue from ``ckpt`` (weights, optimizer, step, schedule, time, generators) or start at step 0;
        then create the run folder (only now: bad settings or data leave no empty folder)."""
        procs, cfg = self.procs, self.cfg
        if ckpt is not None:
            checkpoint.restore(ckpt, self.model, self.optimizer, self.ckpt_path)
            self.step = int(ckpt["step"])
            if procs.world == 1 and len(ckpt["rng"]) == 1 and "interval" in ckpt:
                self.interval = ckpt["interval"]
            self.elapsed_before = float(ckpt.get("elapsed_s", 0.0))
            if ckpt.get("fitted"):
                self.total, self.fitted = min(cfg["max_steps"], int(ckpt["total_steps"])), True
            try:
                if len(ckpt["rng"]) != procs.world:
                    raise ValueError("saved by a different number of processes")
                self.generator.set_state(ckpt["rng"][procs.rank])
            except (ValueError, RuntimeError) as err:  # other process count or device type: fresh distinct streams
                self.generator.manual_seed(cfg["seed"] + 1_000_003 * procs.rank + 1 + 7919 * self.step)
                if procs.is_main:
                    print(f"random generator state not restored ({err}); reseeded", file=sys.stderr)
            if procs.is_main:
                print(f"resuming {self.out} at step {self.step}", file=sys.stderr)
        elif cfg["resume"] and procs.is_main:
            print(f"no checkpoint in {self.out}: starting from step 0", file=sys.stderr)
        # the run's log: kept in memory and rewritten atomically at every record; a resumed run
        # continues it (records after the checkpoint's step are redone, so they are dropped)
        self.records = _read_log_for_resume(self.log_path, self.step) if ckpt is not None and procs.is_main else []
        if procs.is_main:
            self.out.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> Run:
        """Start the clock, the progress bar and the log; catch SIGTERM and SIGINT."""
        cfg, is_main = self.cfg, self.procs.is_main
        if is_main and cfg["progress"]:
            self.pbar = tqdm(total=self.total, initial=self.step, desc=f"train {cfg['architecture']}", mininterval=2.0)
        self.loss_sum = torch.zeros((), device=self.device)
        self.loss_count = 0
        if self.interval is not None:  # resume mid-interval: the next logged loss is the same as without the cut
            self.loss_sum += self.interval[0].to(self.device)
            self.loss_count = int(self.interval[1])
        self.start = _now()
        self.interval_start, self.interval_step = self.start, self.step
        self.rate_start = None  # (time, step) after the first interval: excludes compilation
        self.last_ckpt_time = self.start
        self.next_snapshot = (None if self.snap_period is None
                              else (math.floor(self.elapsed_before / self.snap_period) + 1) * self.snap_period)
        # SIGTERM (a batch scheduler, `timeout`, a closing Binder) and SIGINT (Ctrl-C, a kernel interrupt)
        # stop the loop between two steps; the checkpoint is then written and TrainingInterrupted raised.
        # A second signal interrupts at once.
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._handlers[sig] = signal.signal(sig, self._on_signal)
        if is_main:
            self._write_log()  # the run has started: only now is an old log (--overwrite) replaced
            if cfg["overwrite"] and self.ckpt_path.exists():
                self.ckpt_path.unlink()
        return self

    def _on_signal(self, signum, frame):
        if self.stop_signal is not None:
            raise KeyboardInterrupt
        self.stop_signal = signum

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is not None and issubclass(exc_type, KeyboardInterrupt) and not self.procs.distributed:
                self.save_checkpoint()
                print(f"interrupted: checkpoint at step {self.step} saved in {self.ckpt_path}", file=sys.stderr)
        finally:
            for sig, handler in self._handlers.items():
                signal.signal(sig, handler)
            if self.pbar is not None:
                self.pbar.close()
        return False

    # -- the loop --------------------------------------------------------------------------

    def continues(self) -> bool:
        """Whether to take another step: the schedule, ``--stop-at-step`` and a stop signal decide.

        With several processes, a signal any of them received stops all at the same logging step.
        """
        cfg, procs = self.cfg, self.procs
        stop_at = cfg["stop_at_step"]
        if not (self.step < self.total and (stop_at is None or self.step < stop_at)):
            return False
        at_log_step = self.step % cfg["log_every"] == 0
        if procs.distributed and at_log_step:  # every process stops at the same step
            flag = torch.tensor(float(self.stop_signal or 0), device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            self.stop_signal = int(flag.item()) or None
        return not (self.stop_signal is not None and (not procs.distributed or at_log_step))

    def after_step(self, loss: torch.Tensor, rate: float) -> bool:
        """Count a step's loss; log, validate, checkpoint and snapshot when due. True: stop (time is up)."""
        cfg = self.cfg
        self.loss_sum += loss.detach()
        self.loss_count += 1
        self.step += 1
        if self.pbar is not None:
            self.pbar.update(1)
        step, stop_at = self.step, cfg["stop_at_step"]
        at_end = step >= self.total or (stop_at is not None and step >= stop_at)
        if step % cfg["log_every"] == 0 or at_end:
            self._log_interval(rate)
            if self.stopped_by_time:
                return True
        if step % cfg["val_every"] == 0 and step < self.total and self.procs.is_main:
            self.val_psnr = self.validate()
            self.log({"step": step, "val_psnr": self.val_psnr})
        if step % cfg["ckpt_every"] == 0 and step < self.total:
            self.save_checkpoint()
            self.last_ckpt_time = _now()
        elif (self.ckpt_period is not None and step % cfg["log_every"] == 0
              and _now() - self.last_ckpt_time >= self.ckpt_period):
            self.save_checkpoint()  # by time too: an interruption loses at most ckpt_minutes
            self.last_ckpt_time = _now()
        if (self.next_snapshot is not None and step % cfg["log_every"] == 0
                and self.elapsed_before + _now() - self.start >= self.next_snapshot):
            self.save_snapshot()
            self.next_snapshot += self.snap_period
        return False

    def _log_interval(self, rate: float) -> None:
        """Log the mean loss of the interval (over all processes) and the speed; apply the time budget."""
        procs, cfg, step = self.procs, self.cfg, self.step
        if procs.distributed:  # the mean over all processes
            dist.all_reduce(self.loss_sum)
            self.loss_sum /= procs.world
        self.last_loss = self.loss_sum.item() / self.loss_count  # the only synchronisation of the loop
        now = _now()
        record = {
            "step": step,
            "loss": self.last_loss,
            "lr": rate,
            "patches_per_s": (step - self.interval_step) * cfg["batch_size"] / max(now - self.interval_start, 1e-9),
            "elapsed_s": self.elapsed_before + now - self.start,
        }
        self.loss_sum.zero_()
        self.loss_count = 0
        self.interval_start, self.interval_step = now, step
        if self.budget is not None:
            self._apply_budget(now)
            record["total_steps"] = self.total
        if self.pbar is not None:
            self.pbar.set_postfix(loss=f"{self.last_loss:.3g}", refresh=False)
        self.log(record)

    def _apply_budget(self, now: float) -> None:
        """``--minutes``: rank 0 decides for everyone whether to stop now and (policy "fit") how many steps fit."""
        cfg, step = self.cfg, self.step
        decision = torch.zeros(2, dtype=torch.float64, device=self.device)
        if self.procs.is_main:
            used = now - self.start
            if used >= self.budget - self.reserve:
                decision[0] = 1.0
            decision[1] = self.total
            if cfg["minutes_policy"] == "fit":
                if self.rate_start is None:
                    self.rate_start = (now, step)
                elif step > self.rate_start[1]:
                    steps_per_s = (step - self.rate_start[1]) / (now - self.rate_start[0])
                    reachable = step + int(steps_per_s * max(self.budget - self.reserve - used, 0.0))
                    decision[1] = max(step, min(cfg["max_steps"], reachable))
        if self.procs.distributed:
            dist.broadcast(decision, 0)
        if cfg["minutes_policy"] == "fit" and int(decision[1]) != self.total:
            self.total, self.fitted = int(decision[1]), True
            if self.pbar is not None:
                self.pbar.total = self.total
                self.pbar.refresh()
        if decision[0] > 0 and step < self.total:
            self.stopped_by_time = True

    # -- files -----------------------------------------------------------------------------

    def log(self, record: dict) -> None:
        """Add a record to ``log.jsonl`` (rank 0; the file is rewritten atomically)."""
        if self.procs.is_main:
            self.records.append(record)
            self._write_log()

    def _write_log(self) -> None:
        _checks.atomic_write_text(self.log_path, "".join(json.dumps(r) + "\n" for r in self.records))

    def elapsed(self) -> float:
        """Training seconds so far, over all invocations of this run."""
        return self.elapsed_before + _now() - self.start

    def save_checkpoint(self) -> None:
        """Write ``checkpoint.pt`` (rank 0, with every process's generator state)."""
        state = self.generator.get_state()
        if self.procs.distributed:
            states = [None] * self.procs.world
            dist.all_gather_object(states, state)
        else:
            states = [state]
        if self.procs.is_main:
            checkpoint.write(self.ckpt_path, self.model, self.optimizer, self.step, self.total, self.fitted, states,
                             self.elapsed(), [self.loss_sum.detach().cpu().clone(), self.loss_count], self.cfg)

    def save_snapshot(self) -> None:
        """The weights alone, named by step, with the training time so far (for PSNR-vs-time curves)."""
        if self.procs.is_main:
            checkpoint.write_snapshot(self.out, self.model, self.step, self.elapsed())

    # -- the end ---------------------------------------------------------------------------

    def finish(self) -> dict:
        """After the loop: a final checkpoint, validation, the weights and their manifest entry; the summary.

        Raises :class:`TrainingInterrupted` (after the checkpoint) if a signal stopped the loop.
        """
        procs, step = self.procs, self.step
        if self.stop_signal is not None:
            self.save_checkpoint()
            name = signal.Signals(self.stop_signal).name
            self.log({"step": step, "interrupted": name})
            message = (f"{name}: stopped at step {step} of {self.total}; checkpoint saved in {self.ckpt_path} "
                       "(continue with --resume)")
            if procs.is_main:
                print(message, file=sys.stderr)
            procs.finish()
            raise TrainingInterrupted(message, self.stop_signal, step, self.ckpt_path)
        self.save_checkpoint()
        if self.snap_period is not None:
            self.save_snapshot()
        completed = step >= self.total
        weights_path, entry = None, None
        if procs.is_main:
            self.val_psnr = self.validate()
            self.log({"step": step, "val_psnr": self.val_psnr, "final": True, "completed": completed})
            weights_path, entry = self._write_weights(completed)
            self._report(completed)
        procs.finish()
        return {
            "step": step,
            "total_steps": self.total,
            "completed": completed,
            "final_loss": self.last_loss,
            "val_psnr": self.val_psnr,
            "out": str(self.out),
            "weights": str(weights_path) if weights_path else None,
            "entry": entry,
            "stopped_by_time": self.stopped_by_time,
        }

    def _write_weights(self, completed: bool) -> tuple[Path, dict]:
        """``OUT/NAME.pt`` and ``OUT/manifest_entry.json``; with ``--export``, a finished run's weights in the store."""
        cfg, step = self.cfg, self.step
        name = cfg["export"] or self.out.name
        record = training_record(cfg, step, self.total, self.procs.world, self.device, self.val_psnr, self.elapsed())
        entry = weightstore.save_pretrained(self.model, name, record, weights_dir=self.out, update_manifest=False)
        _checks.atomic_write_json(self.out / "manifest_entry.json", entry)
        if cfg["export"]:
            if completed:
                weightstore.save_pretrained(self.model, cfg["export"], record, weights_dir=cfg["weights_dir"])
                where = cfg["weights_dir"] or weightstore.WEIGHTS_DIR
                print(f"exported {cfg['export']} to {where}", file=sys.stderr)
            else:
                print(f"not exported: stopped at step {step} of {self.total}; continue with --resume to finish",
                      file=sys.stderr)
        return self.out / entry["file"], entry

    def _report(self, completed: bool) -> None:
        cfg = self.cfg
        loss = self.last_loss if self.last_loss is not None else float("nan")
        msg = f"step {self.step}/{self.total}: loss {loss:.4g}"
        if self.val_psnr is not None:
            msg += (f", validation PSNR {self.val_psnr:.2f} dB ({cfg['val_dir'] or cfg['val']}, "
                    f"sigma {cfg['val_sigma']:g})")
        print(msg + ("" if completed else " (stopped early; resume with --resume)"), file=sys.stderr)
