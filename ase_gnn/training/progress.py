"""The training progress bar: it counts towards whichever limit will end the run.

A run stops after ``run.epochs`` epochs or once ``run.time_budget`` seconds have passed,
whichever comes first. A bar over 10,000 epochs of a four-minute budget would show an ETA of
hours, so the bar counts seconds of the budget while the budget is projected to end the run
(from the mean epoch time so far), and epochs otherwise.
"""

from __future__ import annotations

from typing import Literal

from tqdm.auto import tqdm

Limit = Literal["epochs", "time_budget"]


def run_limit(epochs: int, time_budget: float | None, epochs_done: int, seconds: float) -> Limit:
    """The limit projected to end a run.

    Parameters
    ----------
    epochs
        Maximum number of epochs.
    time_budget
        Seconds after which the run stops, or None.
    epochs_done
        Epochs finished so far.
    seconds
        Wall time of those epochs, s.

    Returns
    -------
    str
        ``"time_budget"`` if there is a budget and ``epochs`` epochs at the mean epoch time so
        far would exceed it (or no epoch has finished yet), else ``"epochs"``.

    Examples
    --------
    >>> run_limit(10_000, 240.0, epochs_done=2, seconds=1.0)
    'time_budget'
    >>> run_limit(100, 240.0, epochs_done=2, seconds=1.0)
    'epochs'
    """
    if time_budget is None:
        return "epochs"
    if epochs_done == 0:
        return "time_budget"
    return "time_budget" if seconds / epochs_done * epochs > time_budget else "epochs"


class TrainingProgress:
    """A tqdm bar over epochs (unit ``epoch``) or over the time budget (unit ``s``).

    Parameters
    ----------
    epochs, time_budget
        The run's limits (see :func:`run_limit`).
    epochs_done, seconds
        Progress already made (non-zero when a run is resumed), s for ``seconds``.
    disable
        Show nothing.
    """

    def __init__(
        self,
        epochs: int,
        time_budget: float | None,
        epochs_done: int = 0,
        seconds: float = 0.0,
        disable: bool = False,
    ) -> None:
        self.epochs, self.time_budget = epochs, time_budget
        self.limit = run_limit(epochs, time_budget, epochs_done, seconds)
        total, unit, count = self._counter(epochs_done, seconds)
        # smoothing=0: the rate (and so the ETA) is the mean over the run, not the last epoch.
        self.bar = tqdm(
            total=total, initial=count, unit=unit, desc="training", smoothing=0, disable=disable
        )

    def _counter(self, epochs_done: int, seconds: float) -> tuple[float, str, float]:
        if self.limit == "time_budget":
            assert self.time_budget is not None
            return self.time_budget, "s", round(min(seconds, self.time_budget), 1)
        return self.epochs, "epoch", epochs_done

    def update(self, epochs_done: int, seconds: float, **postfix: str) -> None:
        """Show the progress after ``epochs_done`` epochs and ``seconds`` s of training."""
        limit = run_limit(self.epochs, self.time_budget, epochs_done, seconds)
        self.limit = limit
        total, unit, count = self._counter(epochs_done, seconds)
        if not self.bar.disable and unit != self.bar.unit:
            # The other limit now ends the run: restart the bar in its unit.
            self.bar.reset(total=total)
            self.bar.unit = unit
            self.bar.initial = self.bar.n = count
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(count - self.bar.n)

    def close(self) -> None:
        """Close the bar."""
        self.bar.close()
