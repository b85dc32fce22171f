"""Whether an explanation is faithful, for regression targets (energies, forces, stress).

Every metric re-runs the model through the same gated forward function the attribution used
(:meth:`explain.Explainer.forward`), so "removing" a bond or an atom means setting its gate to
the explainer's baseline (0 for ``"isolated"``: the atom moved away, the bond cut). At edge level
the two directions of a bond are ranked and removed together.

- :attr:`explain.Attribution.completeness_gap`: Σ scores − (f(x) − f(baseline)).
- :func:`fidelity`: fidelity+ = |f(x) − f(x without the top k)| and fidelity− =
  |f(x) − f(only the top k)|, also per atom; a faithful explanation has large fidelity+ and
  small fidelity− (PyG's definitions, made for regression).
- :func:`deletion_insertion`: the target while the top-ranked inputs are removed (deletion) or
  added to the baseline (insertion), normalised to the fraction of f(x) − f(baseline) explained,
  with the area under each curve and the same for a random order as reference.

"Top" means the largest contribution toward f(x) − f(baseline) (score × the sign of that
change), not the largest |score|: signed contributions of opposite sign would cancel.
- :func:`infidelity` and :func:`sensitivity`: Captum's metrics (``captum.metrics``).
- :func:`sparsity`: Gini index of |scores| (0 uniform, → 1 concentrated).
- :func:`randomization_check`: rank correlation with the attributions of a randomly
  re-initialised model; a faithful method gives a low value (Adebayo et al., NeurIPS 2018).
- :func:`rotation_deviation`, :func:`permutation_deviation`: attributions of invariant targets
  must not change under rotations and must follow permutations of the atoms.
"""

from __future__ import annotations

import copy
import numbers
from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms
from captum.metrics import infidelity as captum_infidelity
from captum.metrics import sensitivity_max
from scipy.integrate import trapezoid  # np.trapezoid needs numpy >= 2
from scipy.spatial.transform import Rotation
from scipy.stats import spearmanr
from torch import Tensor

from explain._forward import GateForward
from explain.explainer import Explainer
from explain.methods import METHODS, Call, seeded
from explain.result import Attribution, bond_ids, match_rows


@dataclass(frozen=True)
class Fidelity:
    """Fidelity of the top-k inputs (k bonds or atoms), in the target's unit."""

    k: int
    plus: float
    minus: float
    plus_per_atom: float
    minus_per_atom: float


@dataclass(frozen=True)
class Curves:
    """Deletion and insertion curves.

    Attributes
    ----------
    fraction
        ``[T]`` fraction of the inputs (bonds or atoms) removed or inserted.
    deletion, insertion
        ``[T]`` target values along the curves.
    deletion_explained, insertion_explained
        ``[T]`` the same as fractions of f(x) − f(baseline): (f(x) − f_del)/(f(x) − f(b)) and
        (f_ins − f(b))/(f(x) − f(b)); both rise from 0 to 1, faster for better rankings.
    deletion_auc, insertion_auc
        Areas under the explained-fraction curves (higher is better).
    random_deletion_auc, random_insertion_auc
        The same areas for a random ranking: what an uninformative explanation gets.
    """

    fraction: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    deletion_explained: np.ndarray
    insertion_explained: np.ndarray
    deletion_auc: float
    insertion_auc: float
    random_deletion_auc: float
    random_insertion_auc: float


def _setup(
    explainer: Explainer, attribution: Attribution
) -> tuple[GateForward, Tensor, Tensor, np.ndarray, np.ndarray]:
    """Forward function, inputs, baseline, group of every input and score of every group."""
    if attribution.level == "position" or explainer.level == "position":
        raise ValueError("faithfulness metrics need edge- or atom-level attributions")
    if attribution.level != explainer.level:
        raise ValueError(
            f"attribution is {attribution.level}-level, explainer {explainer.level}-level"
        )
    graph = explainer.graph(attribution.atoms)
    if not np.array_equal(graph.edge_index.cpu().numpy(), attribution.edge_index):
        raise ValueError("the explainer's graph of these atoms differs from the attribution's")
    forward = explainer.forward(graph)
    inputs, baseline = explainer.inputs_and_baseline(forward)
    scores = attribution.scores
    if attribution.level == "edge":
        group = bond_ids(attribution.edge_index, attribution.edge_shift)
    else:
        group = np.arange(len(scores))
    group_scores = np.bincount(group, scores, minlength=int(group.max(initial=-1)) + 1)
    return forward, inputs, baseline[:1], group, group_scores


def _ranked(group_scores: np.ndarray, attribution: Attribution) -> np.ndarray:
    """Groups by their contribution toward f(x) − f(baseline), the largest first.

    For a regression target the scores carry signs (bonds that lower the energy and bonds that
    raise it); ranking by |score| would remove opposite contributions together, which cancel.
    Ranking by score × sign(f(x) − f(baseline)) puts first what moved the target most from the
    baseline toward its value. Ties keep index order, so the order is reproducible.
    """
    change = attribution.target_value - attribution.baseline_value
    direction = -1.0 if change < 0 else 1.0
    return np.argsort(-direction * group_scores, kind="stable")


def fidelity(explainer: Explainer, attribution: Attribution, k: int = 10) -> Fidelity:
    """Fidelity+ and fidelity− of the k top-ranked bonds (edge level) or atoms.

    Parameters
    ----------
    explainer
        The explainer that made ``attribution`` (its model, target, level and baseline).
    attribution
        Edge- or atom-level attribution.
    k
        Number of bonds or atoms kept or removed.

    Returns
    -------
    Fidelity
        |f(x) − f(x \\ top k)| and |f(x) − f(top k only)|, and both divided by the atom count.
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"k must be a positive integer (bonds or atoms to keep), got {k!r}")
    forward, inputs, baseline, group, group_scores = _setup(explainer, attribution)
    top = torch.as_tensor(
        np.isin(group, _ranked(group_scores, attribution)[:k]), device=inputs.device
    )
    removed = torch.where(top, baseline, inputs)
    kept = torch.where(top, inputs, baseline)
    full, without, only = forward.evaluate(torch.cat([inputs, removed, kept])).tolist()
    num_atoms = len(attribution.atoms)
    plus, minus = abs(full - without), abs(full - only)
    return Fidelity(k, plus, minus, plus / num_atoms, minus / num_atoms)


def deletion_insertion(
    explainer: Explainer, attribution: Attribution, steps: int = 20, seed: int = 0
) -> Curves:
    """Deletion and insertion curves of the attribution's ranking, and of a random ranking.

    Parameters
    ----------
    explainer, attribution
        As for :func:`fidelity`.
    steps
        Number of intervals between 0 and all inputs.
    seed
        Seed of the random reference ranking.
    """
    forward, inputs, baseline, group, group_scores = _setup(explainer, attribution)
    num_groups = len(group_scores)
    fraction = np.linspace(0.0, 1.0, steps + 1)
    counts = np.rint(fraction * num_groups).astype(int)
    orders = [
        _ranked(group_scores, attribution),
        np.random.default_rng(seed).permutation(num_groups),
    ]
    rows = []
    for order in orders:
        rank = np.empty(num_groups, dtype=int)
        rank[order] = np.arange(num_groups)
        input_rank = torch.as_tensor(rank[group], device=inputs.device)
        for count in counts:
            first = input_rank < int(count)  # the `count` top-ranked groups
            rows += [torch.where(first, baseline, inputs), torch.where(first, inputs, baseline)]
    evaluated = forward.evaluate(torch.cat(rows), explainer.internal_batch_size)
    values = (
        evaluated.cpu().double().numpy().reshape(2, len(counts), 2)
    )  # [order, step, deletion/insertion]
    full, base = values[0, 0, 0], values[0, 0, 1]
    span = full - base if abs(full - base) > 1e-12 else float("nan")
    deletion_explained = (full - values[..., 0]) / span
    insertion_explained = (values[..., 1] - base) / span
    auc = [
        float(trapezoid(curve, fraction)) for curve in (*deletion_explained, *insertion_explained)
    ]
    return Curves(
        fraction=fraction,
        deletion=values[0, :, 0],
        insertion=values[0, :, 1],
        deletion_explained=deletion_explained[0],
        insertion_explained=insertion_explained[0],
        deletion_auc=auc[0],
        insertion_auc=auc[2],
        random_deletion_auc=auc[1],
        random_insertion_auc=auc[3],
    )


def infidelity(
    explainer: Explainer,
    attribution: Attribution,
    drop_fraction: float = 0.1,
    n_perturb_samples: int = 32,
    seed: int = 0,
) -> float:
    """Captum's infidelity: E[(Iᵀ scores − (f(x) − f(x − I)))²] for random removals I.

    Each perturbation sets a random ``drop_fraction`` of the gates to the baseline (so Iᵀ
    scores is the summed score of the removed inputs). Lower is better; the unit is the
    target's, squared.
    """
    forward, inputs, baseline, _, _ = _setup(explainer, attribution)
    scores = torch.as_tensor(attribution.scores, dtype=inputs.dtype, device=inputs.device)[None]

    # A local CPU generator: the same removals on every device, and no global stream touched.
    generator = torch.Generator().manual_seed(seed)

    def perturb(gates: Tensor) -> tuple[Tensor, Tensor]:
        uniform = torch.rand(gates.shape, generator=generator, dtype=gates.dtype)
        drop = uniform.to(gates.device) < drop_fraction
        perturbed = torch.where(drop, baseline, gates)
        return gates - perturbed, perturbed

    with torch.enable_grad():
        value = captum_infidelity(
            forward.evaluate,
            perturb,
            inputs,
            scores,
            n_perturb_samples=n_perturb_samples,
            max_examples_per_batch=min(explainer.internal_batch_size, n_perturb_samples),
        )
    return float(value.sum())


def sensitivity(
    explainer: Explainer,
    attribution: Attribution,
    radius: float = 0.02,
    n_perturb_samples: int = 4,
    seed: int = 0,
) -> float:
    """Captum's max-sensitivity: the largest relative change ‖Δscores‖ / ‖scores‖ (Frobenius)
    when every gate moves by uniform noise of at most ``radius``. Lower is more stable.

    Costs ``n_perturb_samples`` further attributions.
    """
    forward, inputs, baseline, _, _ = _setup(explainer, attribution)
    spec = METHODS[explainer.method]
    feature_mask = None
    if spec.perturbs and explainer.level == "edge":
        bonds = bond_ids(attribution.edge_index, attribution.edge_shift)
        feature_mask = torch.as_tensor(bonds, device=inputs.device)[None]

    def explanation(gates: tuple[Tensor]) -> tuple[Tensor]:
        # Captum passes and expects tuples, and calls this under no_grad.
        with torch.enable_grad():
            call = Call(
                forward,
                gates[0],
                baseline,
                explainer.internal_batch_size,
                feature_mask,
                explainer.options,
            )
            scores, _ = spec.run(call)
        return (scores.detach(),)

    with seeded(seed, inputs.device):
        value = sensitivity_max(
            explanation,
            inputs,
            perturb_radius=radius,
            n_perturb_samples=n_perturb_samples,
            max_examples_per_batch=n_perturb_samples,
        )
    return float(value.max())


def sparsity(attribution: Attribution) -> float:
    """Gini index of |scores|: 0 when all inputs share equally, → 1 when one carries all.

    References
    ----------
    Chalasani et al., "Concise Explanations of Neural Networks using Adversarial Training",
    ICML 2020.
    """
    values = np.sort(np.abs(attribution.scores))
    count, total = len(values), values.sum()
    if count == 0 or total == 0:
        return 0.0
    ranks = np.arange(1, count + 1)
    return float(((2 * ranks - count - 1) * values).sum() / (count * total))


def randomization_check(explainer: Explainer, atoms: Atoms, seed: int = 0) -> float:
    """Spearman correlation of attributions of the model and of a re-initialised copy.

    The copy's parameters are redrawn (``reset_parameters`` where a layer has one, else normal
    with each tensor's own standard deviation); reference energies E0 are kept. A method whose
    explanations reflect what the model learned gives a low correlation.
    """
    model = copy.deepcopy(explainer.model)
    with seeded(seed, model.device), torch.no_grad():
        reset: set[int] = set()
        for module in model.modules():
            reset_parameters = getattr(module, "reset_parameters", None)
            if module is not model and callable(reset_parameters):
                reset_parameters()
                reset.update(id(p) for p in module.parameters(recurse=False))
        for parameter in model.parameters():
            if id(parameter) not in reset:
                std = float(parameter.std()) if parameter.numel() > 1 else 1.0
                parameter.normal_(0.0, std if std > 0 else 1.0)
    randomized = copy.copy(explainer)
    randomized.model = model
    original = explainer.explain(atoms).scores
    return float(spearmanr(original, randomized.explain(atoms).scores).statistic)


def rotation_deviation(explainer: Explainer, atoms: Atoms, seed: int = 0) -> float:
    """Largest |score change| when the structure (and cell) is rotated at random.

    Meaningful for rotation-invariant targets (energies, local energies).
    """
    rotation = Rotation.random(random_state=seed).as_matrix()
    rotated = atoms.copy()
    rotated.positions = atoms.positions @ rotation.T
    rotated.cell = atoms.cell.array @ rotation.T
    first, second = explainer.explain(atoms), explainer.explain(rotated)
    return float(np.abs(first.scores - _matched(first, second, np.arange(len(atoms)))).max())


def permutation_deviation(explainer: Explainer, atoms: Atoms, seed: int = 0) -> float:
    """Largest |score change| when the atoms are renumbered at random (scores mapped back)."""
    order = np.random.default_rng(seed).permutation(len(atoms))
    first, second = explainer.explain(atoms), explainer.explain(atoms[order])
    return float(np.abs(first.scores - _matched(first, second, order)).max())


def _matched(first: Attribution, second: Attribution, order: np.ndarray) -> np.ndarray:
    """Scores of ``second`` (atoms ``order`` of ``first``) in the order of ``first``'s inputs."""
    if first.edge is None:
        back = np.empty_like(second.scores)
        back[order] = second.scores
        return back
    assert second.edge is not None
    keys = np.concatenate([first.edge_index.T, np.rint(first.edge_shift)], axis=1)
    mapped = np.concatenate([order[second.edge_index].T, np.rint(second.edge_shift)], axis=1)
    index = match_rows(mapped.astype(np.int64), keys.astype(np.int64), "the edges differ")
    return second.edge[index]
