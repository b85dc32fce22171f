"""The training loop: ``Trainer(model, config).fit(train, valid, test) -> History``.

One plain loop for one process or many (``torchrun``): data-parallel training wraps the model in
``DistributedDataParallel``, shares every global batch out among the processes (each global batch is
the same set of structures as in a one-process run, see :func:`global_batches`) and reduces
metrics across ranks; only rank 0 writes files. The model never knows the trainer.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
import torch.distributed as dist
from ase import Atoms
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel

from ase_gnn.models.base import EnergyModel
from ase_gnn.models.forces import predict
from ase_gnn.models.heads import build_head
from ase_gnn.models.io import resolve_dtype, save_model
from ase_gnn.training.checkpoint import check_same_model, load_checkpoint, save_checkpoint
from ase_gnn.training.config import HeadConfig, TrainConfig, check_training_settings
from ase_gnn.training.data import GraphDataset, label_keys
from ase_gnn.training.loss import LossWeights, error_sums, metrics_from_sums, weighted_loss
from ase_gnn.training.progress import TrainingProgress

logger = logging.getLogger(__name__)


@dataclass
class History:
    """Per-epoch record of a run (restored on resume).

    Attributes
    ----------
    rows
        One dict per epoch: ``epoch``, ``learning_rate``, ``train_loss``, ``seconds`` and
        ``{train,valid,test}_{energy,forces,stress}_{mae,rmse}`` (eV/atom, eV/Å, eV/Å³).
    best_epoch
        Epoch whose (averaged) weights were kept: lowest validation loss, counted from
        ``loss.switch_epoch`` on when a second stage is configured (its loss weights change
        the scale of the loss, so stage one's best is not comparable).
    stopped
        Why the run ended: ``"epochs"``, ``"time_budget"`` or ``"early_stopping"``.
    """

    rows: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    stopped: str = ""

    @property
    def train_loss(self) -> list[float]:
        """Mean training loss per epoch."""
        return [row["train_loss"] for row in self.rows]

    @property
    def valid(self) -> list[dict[str, float]]:
        """Validation metrics per epoch (keys without the ``valid_`` prefix)."""
        return [
            {k.removeprefix("valid_"): v for k, v in row.items() if k.startswith("valid_")}
            for row in self.rows
        ]

    @property
    def seconds(self) -> float:
        """Wall time of all epochs so far."""
        return self.rows[-1]["seconds"] if self.rows else 0.0


def ema_with_warmup(decay: float) -> Any:
    """EMA update for ``AveragedModel``: decay min(d, (1 + n)/(10 + n)) after n updates.

    The warm-up keeps early averages from being dominated by the random initial weights, which a
    fixed 0.99 would remember for hundreds of steps (short runs would evaluate a stale model).
    """

    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], count: Any) -> None:
        n = float(count)
        weight = 1.0 - min(decay, (1.0 + n) / (10.0 + n))
        for a, c in zip(averaged, current):
            a.lerp_(c, weight)

    return update


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _all_reduce(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Sum a dict of floats over all ranks (identity in one process)."""
    if _world()[1] == 1 or not values:
        return values
    keys = sorted(values)
    tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return dict(zip(keys, tensor.tolist()))


def _validation_loss(
    metrics: dict[str, float], weights: LossWeights, heads: Sequence[HeadConfig] = ()
) -> float:
    loss = weights.energy * metrics["energy_rmse"] ** 2
    if "forces_rmse" in metrics:
        loss += weights.forces * metrics["forces_rmse"] ** 2
    if weights.stress and "stress_rmse" in metrics:
        loss += weights.stress * metrics["stress_rmse"] ** 2
    for head in heads:
        if f"{head.name}_rmse" in metrics:
            loss += head.weight * metrics[f"{head.name}_rmse"] ** 2
        elif f"{head.name}_accuracy" in metrics:
            loss += head.weight * (1.0 - metrics[f"{head.name}_accuracy"])
    return loss


def add_heads(model: EnergyModel, heads: Sequence[HeadConfig], seed: int | None = None) -> None:
    """Attach the configured heads the model does not have yet (in place).

    With a ``seed`` their weights are drawn from a torch stream seeded with it, forked from the
    global one (which is left as it was); without, from the global stream.
    """
    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            add_heads(model, heads)
        return
    for head in heads:
        if head.name in model.heads:
            continue
        arguments = {
            "name": head.name,
            "num_features": model.num_features,
            "task": head.task,
            "num_outputs": head.num_outputs,
            "classes": head.classes,
            "hidden": head.hidden,
        }
        if head.level == "edge":
            arguments["cutoff"] = model.cutoff
        if head.level == "graph":
            arguments["readout"] = head.readout
        model.add_head(build_head({"level": head.level, **arguments}))


def evaluate_metrics(
    model: EnergyModel,
    dataset: GraphDataset,
    batch_size: int = 16,
    stress: bool = True,
    shard: bool = False,
    heads: Sequence[HeadConfig] = (),
) -> dict[str, float]:
    """MAE and RMSE of ``model`` on ``dataset``: energy per atom (eV/atom), forces (eV/Å) and,
    where labelled and defined, stress (eV/Å³); MAE/RMSE or accuracy of the given ``heads``
    (whose labels ``dataset`` must hold).

    With ``shard=True`` under ``torch.distributed`` every rank evaluates its share of the
    structures and the sums are reduced, so all ranks return the same numbers.
    """
    rank, world = _world() if shard else (0, 1)
    indices = list(range(rank, len(dataset), world))
    sums: dict[str, float] = {}
    for start in range(0, len(indices), batch_size):
        graph, labels = dataset.batch(indices[start : start + batch_size], model.device)
        # Stress is masked per structure in error_sums (stress_label_mask), so the metrics do
        # not depend on which structures share a batch.
        prediction = predict(model, graph, forces=True, stress=stress)
        outputs = None
        if heads:
            with torch.no_grad():
                outputs = model.head_outputs(graph, [head.name for head in heads])
        for key, value in error_sums(prediction, labels, graph, outputs, heads).items():
            sums[key] = sums.get(key, 0.0) + value
    if shard:
        sums = _all_reduce(sums, model.device)
    return metrics_from_sums(sums)


class Trainer:
    """Trains an :class:`EnergyModel` as described by a :class:`TrainConfig`.

    Parameters
    ----------
    model
        The potential; trained in place. At the end it holds the best (averaged) weights.
    config
        Loss, optimiser, schedule and run settings (``config.model`` and ``config.data`` are
        used by :func:`ase_gnn.training.train_from_config`, not here).

    Examples
    --------
    >>> trainer = Trainer(model, TrainConfig(run=RunConfig(epochs=50)))  # doctest: +SKIP
    >>> history = trainer.fit(train_structures, valid_structures)  # doctest: +SKIP
    """

    def __init__(self, model: EnergyModel, config: TrainConfig) -> None:
        self.model = model
        self.config = config
        self.rank, self.world_size = _world()
        run = config.run
        if run.batch_size % self.world_size:
            raise ValueError(
                f"batch_size {run.batch_size} must be divisible by the {self.world_size} processes"
            )
        device = torch.device(run.device)
        if device.type == "cuda" and self.world_size > 1 and device.index is None:
            device = torch.device("cuda", self.rank % torch.cuda.device_count())
        self.device = device
        self.dtype = resolve_dtype(run.dtype)
        self.out_dir = Path(run.out_dir)
        self.keys = label_keys(config.data)
        check_training_settings(config)
        self.heads = config.heads
        # The global random stream is never seeded nor read, so a fit does not change the
        # caller's random numbers: heads are initialised under a fork of it, and the shuffles
        # are derived from seed and epoch alone (global_batches), so a resume needs no state.
        add_heads(model, self.heads, seed=run.seed)

    # -- set-up -----------------------------------------------------------------------------
    def _dataset(self, data: Sequence[Atoms] | GraphDataset, name: str) -> GraphDataset:
        if isinstance(data, GraphDataset):
            return data
        return GraphDataset(
            data,
            self.model.cutoff,
            self.dtype,
            self.keys,
            self.model.species,
            name=f"{name} set",
            heads=self.heads,
        )

    def _loss_weights(self, epoch: int) -> LossWeights:
        loss = self.config.loss
        late = loss.switch_epoch is not None and epoch >= loss.switch_epoch
        return LossWeights(
            energy=loss.switch_energy_weight if late else loss.energy_weight,
            forces=loss.switch_forces_weight if late else loss.forces_weight,
            stress=loss.switch_stress_weight if late else loss.stress_weight,
            charges=loss.charges_weight,
            kind=loss.kind,
            huber_delta=loss.huber_delta,
        )

    def _optimizer(self) -> torch.optim.Optimizer:
        options = self.config.optimizer
        params = self.model.parameters()
        if options.name == "adam":
            return torch.optim.Adam(
                params, lr=options.learning_rate, weight_decay=options.weight_decay
            )
        if options.name == "adamw":
            return torch.optim.AdamW(
                params, lr=options.learning_rate, weight_decay=options.weight_decay
            )
        return torch.optim.SGD(
            params,
            lr=options.learning_rate,
            momentum=options.momentum,
            nesterov=options.nesterov,
            weight_decay=options.weight_decay,
        )

    def _scheduler(self, optimizer: torch.optim.Optimizer) -> Any:
        s, epochs = self.config.schedule, self.config.run.epochs
        lr_scheduler = torch.optim.lr_scheduler
        if s.name == "plateau":
            return lr_scheduler.ReduceLROnPlateau(
                optimizer, factor=s.factor, patience=s.patience, min_lr=s.min_learning_rate
            )
        if s.name == "step":
            return lr_scheduler.StepLR(optimizer, step_size=s.step_size, gamma=s.factor)
        if s.name == "cosine":
            cosine = lr_scheduler.CosineAnnealingLR(
                optimizer, T_max=max(1, epochs - s.warmup_epochs), eta_min=s.min_learning_rate
            )
            if s.warmup_epochs == 0:
                return cosine
            warmup = lr_scheduler.LinearLR(
                optimizer, start_factor=1e-2, total_iters=s.warmup_epochs
            )
            return lr_scheduler.SequentialLR(optimizer, [warmup, cosine], [s.warmup_epochs])
        return None

    # -- checkpoints ------------------------------------------------------------------------
    def _save(self, run: _Run, path: Path, epoch: int) -> None:
        save_checkpoint(
            path,
            {
                "model": self.model.state_dict(),
                "model_config": self._model_config(),
                "optimizer": run.optimizer.state_dict(),
                "scheduler": None if run.scheduler is None else run.scheduler.state_dict(),
                "ema": None if run.ema is None else run.ema.state_dict(),
                "epoch": epoch,
                "best_loss": run.best_loss,
                "history": dataclasses.asdict(run.history),
                "config": self.config.to_dict(),
            },
        )

    def _model_config(self) -> dict[str, Any]:
        """What must not change between a checkpoint and the run that resumes it."""
        return {"architecture": self.model.architecture, **self.model.config()}

    def _restore(
        self,
        path: Path,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        ema: AveragedModel | None,
    ) -> tuple[int, History, float]:
        state = load_checkpoint(path)
        check_same_model(path, state["model_config"], self._model_config())
        self.model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state["scheduler"] is not None:
            scheduler.load_state_dict(state["scheduler"])
        if ema is not None and state["ema"] is not None:
            ema.load_state_dict(state["ema"])
        return state["epoch"], History(**state["history"]), state["best_loss"]

    # -- the loop ---------------------------------------------------------------------------
    def fit(
        self,
        train: Sequence[Atoms] | GraphDataset,
        valid: Sequence[Atoms] | GraphDataset,
        test: Sequence[Atoms] | GraphDataset | None = None,
        resume: bool = False,
    ) -> History:
        """Train, evaluate every epoch, checkpoint, and keep the best weights.

        Parameters
        ----------
        train, valid, test
            Labelled structures (or prepared :class:`GraphDataset`); ``test`` is optional and
            only reported.
        resume
            Continue from ``<out_dir>/checkpoints/last.ckpt`` if it exists, reproducing the
            uninterrupted run exactly.

        Returns
        -------
        History
            Metrics per epoch; also written to ``<out_dir>/metrics.csv`` by rank 0.
        """
        run = self._start(train, valid, test, resume)
        try:
            for epoch in range(run.start_epoch, self.config.run.epochs):
                weights = self._loss_weights(epoch)
                if self.config.loss.switch_epoch == epoch:
                    self._start_stage_two(run)
                row = self._train_epoch(run, epoch, weights)
                valid_metrics, valid_loss = self._validate(run, epoch, weights, row)
                stopped = self._end_epoch(run, epoch, row, valid_metrics, valid_loss)
                if stopped:
                    run.history.stopped = stopped
                    break
            else:
                run.history.stopped = "epochs"
        finally:
            run.bar.close()
            if run.board is not None:
                run.board.close()
        return self._finish(run)

    def _start(
        self,
        train: Sequence[Atoms] | GraphDataset,
        valid: Sequence[Atoms] | GraphDataset,
        test: Sequence[Atoms] | GraphDataset | None,
        resume: bool,
    ) -> _Run:
        """Data sets, optimiser, schedule, EMA, output folders; the checkpoint if resuming."""
        config = self.config.run
        self.model.to(device=self.device, dtype=self.dtype)
        network: torch.nn.Module = self.model
        if self.world_size > 1:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            network = DistributedDataParallel(self.model, device_ids=device_ids)
        optimizer = self._optimizer()
        decay = self.config.optimizer.ema_decay
        ema = None
        if decay is not None:
            # Buffers (reference energies, scale) are constants: copied, not averaged.
            ema = AveragedModel(self.model, multi_avg_fn=ema_with_warmup(decay), use_buffers=False)
        checkpoints = self.out_dir / "checkpoints"
        if self.rank == 0:
            checkpoints.mkdir(parents=True, exist_ok=True)
        run = _Run(
            model=self.model,
            network=network,
            optimizer=optimizer,
            scheduler=self._scheduler(optimizer),
            ema=ema,
            train_set=self._dataset(train, "training"),
            valid_set=self._dataset(valid, "validation"),
            test_set=None if test is None else self._dataset(test, "test"),
            checkpoints=checkpoints,
        )
        if resume and (checkpoints / "last.ckpt").exists():
            last_epoch, run.history, run.best_loss = self._restore(
                checkpoints / "last.ckpt", optimizer, run.scheduler, ema
            )
            run.start_epoch = last_epoch + 1
            logger.info("resumed from epoch %d", last_epoch)
        if run.history.best_epoch >= 0:
            run.stale = run.start_epoch - 1 - run.history.best_epoch
        show = config.progress if config.progress is not None else sys.stderr.isatty()
        run.bar = TrainingProgress(
            config.epochs,
            config.time_budget,
            run.start_epoch,
            run.history.seconds,
            disable=not (show and self.rank == 0),
        )
        run.board = _tensorboard(self.out_dir) if config.tensorboard and self.rank == 0 else None
        run.clock = time.perf_counter() - run.history.seconds
        return run

    def _start_stage_two(self, run: _Run) -> None:
        """At ``switch_epoch``: the second stage's learning rate, and its own best and patience."""
        for group in run.optimizer.param_groups:
            group["lr"] = self.config.loss.switch_learning_rate
        # The new weights change the scale of the validation loss: a stage-one best is not
        # comparable, so stage two starts its own best model and patience (as MACE does).
        run.best_loss, run.stale = math.inf, 0

    def _train_epoch(self, run: _Run, epoch: int, weights: LossWeights) -> dict[str, float]:
        """One pass over the training set; the epoch's training metrics (reduced over ranks)."""
        self.model.train()
        loss_sum, sums = 0.0, dict[str, float]()
        batch_size = self.config.run.batch_size
        for batch in global_batches(len(run.train_set), batch_size, self.config.run.seed, epoch):
            if len(batch) < self.world_size:
                continue  # a last batch too small to give every process a structure
            loss, batch_sums = self._step(run, batch, weights, epoch)
            loss_sum += loss * len(batch) / self.world_size
            for key, value in batch_sums.items():
                sums[key] = sums.get(key, 0.0) + value
        # Every rank adds its share of the count, so the all-reduced count is the set size.
        sums["loss"] = loss_sum
        sums["count"] = float(len(run.train_set)) / self.world_size
        sums = _all_reduce(sums, self.device)
        row: dict[str, float] = {
            "epoch": epoch,
            "learning_rate": run.optimizer.param_groups[0]["lr"],
            "train_loss": sums["loss"] / sums["count"],
        }
        return row | {f"train_{k}": v for k, v in metrics_from_sums(sums).items()}

    def _step(
        self, run: _Run, batch: list[int], weights: LossWeights, epoch: int
    ) -> tuple[float, dict[str, float]]:
        """One optimiser step on this rank's share of a global batch: its loss and error sums."""
        graph, labels = run.train_set.batch(batch[self.rank :: self.world_size], self.device)
        prediction = predict(
            run.network, graph, forces=True, stress=weights.stress > 0, training=True
        )
        # Heads run the backbone once more: simple, and only when heads are trained.
        outputs = None
        if self.heads:
            outputs = self.model.head_outputs(graph, [h.name for h in self.heads])
        loss = weighted_loss(
            prediction,
            labels,
            graph,
            weights,
            num_structures=len(batch) / self.world_size,
            head_outputs=outputs,
            heads=self.heads,
        )
        if not _finite_on_every_rank(loss.detach(), self.device):
            # Before the step, so the model keeps its last finite weights.
            raise _non_finite_loss("training", epoch, self.out_dir)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.optimizer.gradient_clip is not None:
            torch.nn.utils.clip_grad_norm_(
                self.model.parameters(), self.config.optimizer.gradient_clip
            )
        run.optimizer.step()
        if run.ema is not None:
            run.ema.update_parameters(self.model)
        return float(loss.detach()), error_sums(prediction, labels, graph, outputs, self.heads)

    def _validate(
        self, run: _Run, epoch: int, weights: LossWeights, row: dict[str, float]
    ) -> tuple[dict[str, float], float]:
        """Validation (and test) metrics into ``row``; the validation loss steps the schedule."""
        run.evaluated.eval()
        batch_size = self.config.run.eval_batch_size
        valid_metrics = evaluate_metrics(
            run.evaluated, run.valid_set, batch_size, shard=True, heads=self.heads
        )
        row |= {f"valid_{k}": v for k, v in valid_metrics.items()}
        if run.test_set is not None:
            test_metrics = evaluate_metrics(
                run.evaluated, run.test_set, batch_size, shard=True, heads=self.heads
            )
            row |= {f"test_{k}": v for k, v in test_metrics.items()}
        valid_loss = _validation_loss(valid_metrics, weights, self.heads)
        if not math.isfinite(valid_loss):  # the same on every rank (metrics are reduced)
            raise _non_finite_loss("validation", epoch, self.out_dir)
        if isinstance(run.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            run.scheduler.step(valid_loss)
        elif run.scheduler is not None:
            run.scheduler.step()
        return valid_metrics, valid_loss

    def _end_epoch(
        self,
        run: _Run,
        epoch: int,
        row: dict[str, float],
        valid_metrics: dict[str, float],
        valid_loss: float,
    ) -> str:
        """Record the epoch, keep the best model, checkpoint; why the run stops, or ``""``."""
        config = self.config.run
        row["seconds"] = time.perf_counter() - run.clock
        run.history.rows.append(row)
        improved = valid_loss < run.best_loss
        run.stale = 0 if improved else run.stale + 1
        if improved:
            run.best_loss, run.history.best_epoch = valid_loss, epoch
        out_of_time = config.time_budget is not None and row["seconds"] > config.time_budget
        if self.world_size > 1:  # every rank must stop at the same epoch
            flag = torch.tensor([float(out_of_time)], device=self.device)
            dist.broadcast(flag, 0)
            out_of_time = bool(flag.item())
        patience = config.early_stopping_patience
        stop_early = patience is not None and run.stale >= patience
        if self.rank == 0:
            if improved:
                save_model(run.evaluated, self.out_dir / "best.safetensors")
            last = epoch == config.epochs - 1 or out_of_time or stop_early
            due = last or (epoch + 1) % config.checkpoint_every == 0
            for name in ["best"] * improved + ["last"] * due:
                self._save(run, run.checkpoints / f"{name}.ckpt", epoch)
            write_metrics_csv(run.history, self.out_dir / "metrics.csv")
            if run.board is not None:
                for key, value in row.items():
                    run.board.add_scalar(key, value, epoch)
        run.bar.update(
            epoch + 1,
            row["seconds"],
            E_meV=f"{1e3 * valid_metrics['energy_mae']:.1f}",
            F_meV=f"{1e3 * valid_metrics.get('forces_mae', math.nan):.1f}",
        )
        logger.info("epoch %d %s", epoch, row)
        if out_of_time:
            return "time_budget"
        return "early_stopping" if stop_early else ""

    def _finish(self, run: _Run) -> History:
        """The best weights (or the average) into the model, in eval mode."""
        if self.world_size > 1:
            dist.barrier()
        best = self.out_dir / "best.safetensors"
        if run.history.best_epoch >= 0 and best.exists():
            self.model.load_state_dict(_read_weights(best))
        elif run.ema is not None:
            self.model.load_state_dict(run.ema.module.state_dict())
        self.model.eval()
        return run.history


@dataclass
class _Run:
    """The state one call of :meth:`Trainer.fit` passes between its steps."""

    model: EnergyModel
    network: torch.nn.Module
    """The model, or its ``DistributedDataParallel`` wrapper."""
    optimizer: torch.optim.Optimizer
    scheduler: Any
    ema: AveragedModel | None
    train_set: GraphDataset
    valid_set: GraphDataset
    test_set: GraphDataset | None
    checkpoints: Path
    history: History = field(default_factory=History)
    best_loss: float = math.inf
    stale: int = 0
    """Epochs since the validation loss last improved."""
    start_epoch: int = 0
    clock: float = 0.0
    """``time.perf_counter()`` at the (virtual) start of the run, resumed time included."""
    bar: Any = None
    board: Any = None

    @property
    def evaluated(self) -> EnergyModel:
        """What is evaluated and saved: the weight average if there is one, else the model."""
        return self.model if self.ema is None else cast(EnergyModel, self.ema.module)


def _finite_on_every_rank(value: torch.Tensor, device: torch.device) -> bool:
    """Whether ``value`` is finite in every process (all stop together, none waits forever)."""
    flag = (~torch.isfinite(value)).any().to(device=device, dtype=torch.float64).reshape(1)
    if _world()[1] > 1:
        dist.all_reduce(flag)
    return not bool(flag.item())


def _non_finite_loss(kind: str, epoch: int, out_dir: Path) -> ValueError:
    return ValueError(
        f"non-finite {kind} loss in epoch {epoch}: training stopped and nothing of this epoch "
        f"was saved ({out_dir / 'best.safetensors'}, if present, holds the best epoch so far); "
        "lower the learning rate or enable gradient clipping"
    )


def _tensorboard(out_dir: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        raise ValueError(
            "run.tensorboard = true needs the tensorboard package (pip install tensorboard)"
        ) from error
    return SummaryWriter(str(out_dir / "tensorboard"))


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def global_batches(num_items: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The shuffled batches of one epoch, identical in every process.

    The order depends only on ``seed`` and ``epoch`` (so a resumed run replays it exactly). Under
    data parallelism process r takes ``batch[r::world_size]`` of every batch, so the global batches
    are the same whatever the number of processes.

    Why not ``DataLoader`` with ``DistributedSampler``: the sampler gives each process its own
    shard and pads it with repeated structures, so the global batches (and the trained model)
    change with the number of processes; and graphs are built once and cached in
    :class:`GraphDataset`, so worker processes would only add copying. A ``DataLoader`` over
    these index lists would do the same work with more machinery.
    """
    generator = torch.Generator().manual_seed(seed + 1_000_003 * epoch)
    order = torch.randperm(num_items, generator=generator).tolist()
    return [order[k : k + batch_size] for k in range(0, num_items, batch_size)]


def write_metrics_csv(history: History, path: Path) -> None:
    """Write every epoch's row to a CSV file (rewritten whole, so it always matches the history)."""
    columns: list[str] = []
    for row in history.rows:
        columns += [k for k in row if k not in columns]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history.rows)
