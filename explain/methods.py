"""The attribution methods: Captum's, with explicit defaults, plus a learned soft mask.

Every method takes a :class:`Call`: the attributed function, inputs ``[1, K]`` (all gates 1, or
the positions), baselines ``[R, K]``, and a bound on the samples per model call.
Captum does the attribution; nothing here re-implements it. Captum's random draws (GradientShap,
Shapley sampling) use the global generators of torch and numpy, so they run inside
:func:`seeded`: reproducible from the method's seed, and the caller's random state is restored.

=========================  ==============================================  ===================
method                     Captum class (defaults)                         levels
=========================  ==============================================  ===================
integrated_gradients       IntegratedGradients (n_steps=64, gausslegendre)  edge, atom
saliency                   Saliency (abs=False: signed gradients)           edge, atom, position
input_x_gradient           InputXGradient                                   edge, atom
gradient_shap              GradientShap (n_samples=64, stdevs=0)            edge, atom
deeplift                   DeepLift: rejected for every ase_gnn model       -
feature_ablation           FeatureAblation (one bond / atom at a time)      edge, atom
shapley_value_sampling     ShapleyValueSampling (n_samples=8)               edge, atom
gnn_explainer              learned soft mask (GNNExplainer for regression)  edge, atom
integrated_hessians        our own (Captum has none; n_steps=16)            edge, atom
=========================  ==============================================  ===================

``integrated_hessians`` gives pairwise interactions Γ ``[K, K]`` whose rows sum to the
Integrated Gradients scores (:func:`integrated_hessians`); the scores it reports are those row
sums, and the explainer keeps Γ in ``Attribution.interaction``.

For the perturbation methods (ablation, Shapley) at edge level the two directions of a bond are
removed together (a Captum ``feature_mask``), since removing one direction alone is no physical
change; each direction then gets half of the bond's score.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from captum.attr import (
    FeatureAblation,
    GradientShap,
    InputXGradient,
    IntegratedGradients,
    Saliency,
    ShapleyValueSampling,
)
from torch import Tensor, nn

from explain._forward import GateForward


@dataclass(frozen=True)
class Call:
    """One attribution request, as every method receives it.

    Attributes
    ----------
    forward
        The function attributed (gates → target).
    inputs
        ``[M, K]`` gates (or positions) to attribute; M = 1 except inside Captum's metrics.
    baseline
        ``[R, K]`` baselines (R > 1 only as GradientShap's distribution).
    batch_size
        Most samples per model call.
    feature_mask
        ``[1, K]`` group of every input for the perturbation methods (both directions of a
        bond), or None.
    options
        The method's options, defaults filled in.
    """

    forward: GateForward
    inputs: Tensor
    baseline: Tensor
    batch_size: int
    feature_mask: Tensor | None
    options: Mapping[str, Any]


#: A method's implementation: attributions ``[M, K]`` and Captum's convergence delta (or None).
Runner = Callable[[Call], "tuple[Tensor, float | None]"]


@contextmanager
def seeded(seed: int, device: torch.device | None = None) -> Iterator[None]:
    """Seed torch's CPU generator, numpy's global one and that of a CUDA ``device``; restore all.

    Captum draws from torch's global generators on the inputs' device and from numpy's global
    one; forking them keeps the caller's random streams as they were.
    """
    numpy_state = np.random.get_state()  # noqa: NPY002 - saved to be restored
    devices: list[int] = []
    if device is not None and device.type == "cuda":
        devices = [torch.cuda.current_device() if device.index is None else device.index]
    with torch.random.fork_rng(devices=devices):
        torch.default_generator.manual_seed(seed)
        for index in devices:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        np.random.seed(seed)  # noqa: NPY002 - Captum draws from numpy's global generator
        try:
            yield
        finally:
            np.random.set_state(numpy_state)  # noqa: NPY002


@dataclass(frozen=True)
class Method:
    """One attribution method: what it supports and its defaults."""

    name: str
    run: Runner
    levels: tuple[str, ...] = ("edge", "atom")
    defaults: Mapping[str, Any] = field(default_factory=dict)
    #: Whether the scores are an unsigned mask in (0, 1), not contributions that add up.
    mask: bool = False
    #: Whether grouping both directions of a bond (``feature_mask``) applies.
    perturbs: bool = False
    #: Whether the runner returns interactions ``[K, K]`` rather than scores ``[1, K]``.
    interactions: bool = False


def _integrated_gradients(call: Call) -> tuple[Tensor, float | None]:
    attributions, delta = IntegratedGradients(call.forward).attribute(
        call.inputs,
        baselines=call.baseline[:1],
        n_steps=call.options["n_steps"],
        method=call.options["integration"],
        internal_batch_size=call.batch_size,
        return_convergence_delta=True,
    )
    return attributions, float(delta.abs().max())


def _saliency(call: Call) -> tuple[Tensor, float | None]:
    inputs = call.inputs.detach().requires_grad_()  # as Captum would, without its warning
    return Saliency(call.forward).attribute(inputs, abs=call.options["abs"]), None


def _input_x_gradient(call: Call) -> tuple[Tensor, float | None]:
    inputs = call.inputs.detach().requires_grad_()
    return InputXGradient(call.forward).attribute(inputs), None


def _gradient_shap(call: Call) -> tuple[Tensor, float | None]:
    # GradientShap is a sample mean; Captum evaluates all samples in one call, so the samples are
    # drawn in chunks of batch_size and the chunk means averaged (the same estimator).
    total, drawn = torch.zeros_like(call.inputs), 0
    explainer = GradientShap(call.forward)
    with seeded(call.options["seed"], call.inputs.device):
        while drawn < call.options["n_samples"]:
            chunk = min(call.batch_size, call.options["n_samples"] - drawn)
            part = explainer.attribute(
                call.inputs, baselines=call.baseline, n_samples=chunk, stdevs=call.options["stdevs"]
            )
            total, drawn = total + chunk * part, drawn + chunk
    return total / drawn, None


def _feature_ablation(call: Call) -> tuple[Tensor, float | None]:
    attributions = FeatureAblation(call.forward).attribute(
        call.inputs,
        baselines=call.baseline[:1],
        feature_mask=call.feature_mask,
        perturbations_per_eval=call.batch_size,
    )
    return attributions, None


def _shapley(call: Call) -> tuple[Tensor, float | None]:
    if call.inputs.shape[-1] == 0:
        raise ValueError(
            "shapley_value_sampling has nothing to permute: the structure has no edges within "
            "the model's cutoff (every atom is isolated, so the energy is the sum of E0)"
        )
    with seeded(call.options["seed"], call.inputs.device):
        attributions = ShapleyValueSampling(call.forward).attribute(
            call.inputs,
            baselines=call.baseline[:1],
            feature_mask=call.feature_mask,
            n_samples=call.options["n_samples"],
            perturbations_per_eval=call.batch_size,
            show_progress=call.options["progress"],
        )
    return attributions, None


def _learned_mask(call: Call) -> tuple[Tensor, float | None]:
    """GNNExplainer's soft mask, for regression: the smallest, most decisive mask m ∈ (0, 1)^K
    that keeps the target, minimising |f(b + m (x − b)) − f(x)| + λ_size mean(m) + λ_H mean(H(m)).

    References
    ----------
    Ying et al., "GNNExplainer: Generating Explanations for Graph Neural Networks", NeurIPS 2019.
    """
    inputs, options = call.inputs, call.options
    reference = call.forward.evaluate(inputs)
    origin = call.baseline[:1]
    generator = torch.Generator().manual_seed(options["seed"])
    noise = torch.randn(inputs.shape, generator=generator, dtype=inputs.dtype).to(inputs.device)
    logits = nn.Parameter(options["initial_logit"] + 0.1 * noise)
    optimizer = torch.optim.Adam([logits], lr=options["learning_rate"])
    for _ in range(options["epochs"]):
        optimizer.zero_grad()
        mask = torch.sigmoid(logits)
        value = call.forward(origin + mask * (inputs - origin))
        eps = torch.finfo(mask.dtype).eps
        entropy = -(mask * (mask + eps).log() + (1 - mask) * (1 - mask + eps).log())
        loss = (
            (value - reference).abs().sum()
            + options["size_weight"] * mask.mean()
            + options["entropy_weight"] * entropy.mean()
        )
        loss.backward()
        optimizer.step()
    return torch.sigmoid(logits).detach(), None


@functools.lru_cache(maxsize=8)
def log_weight_rule(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss quadrature on (0, 1) for the weight −ln γ: ``n`` nodes and weights.

    ∫₀¹ −ln γ · p(γ) dγ is exact for polynomials p of degree up to 2n − 1. The weight is the
    density of γ = αβ for α, β uniform on (0, 1), so the rule comes from the Stieltjes
    procedure (orthonormal recurrence, then the eigenvalues of the Jacobi matrix) on the
    discrete measure of a tensor Gauss–Legendre grid in α and β, which has the same moments up
    to degree 2·max(2n, 64) − 1.

    Returns
    -------
    nodes, weights : ndarray
        ``[n]`` each; the weights sum to 1.
    """
    x, w = np.polynomial.legendre.leggauss(max(2 * n, 64))
    x, w = (x + 1) / 2, w / 2
    points, masses = np.outer(x, x).ravel(), np.outer(w, w).ravel()
    previous, current = np.zeros_like(points), np.ones_like(points)  # ∫ −ln γ dγ = 1
    diagonal, off = np.zeros(n), np.zeros(n)
    for k in range(n):
        diagonal[k] = np.sum(masses * points * current**2)
        residual = (points - diagonal[k]) * current - (off[k - 1] if k else 0.0) * previous
        off[k] = np.sqrt(np.sum(masses * residual**2))
        previous, current = current, residual / off[k]
    jacobi = np.diag(diagonal) + np.diag(off[:-1], 1) + np.diag(off[:-1], -1)
    nodes, vectors = np.linalg.eigh(jacobi)
    return nodes, vectors[0] ** 2


def integrated_hessians(
    forward: Callable[[Tensor], Tensor],
    inputs: Tensor,
    baseline: Tensor,
    n_steps: int = 16,
    batch_size: int = 64,
) -> Tensor:
    """Integrated Hessians: the interaction of every pair of inputs, rows summing to IG.

    With Δ = x − x' and the path x(γ) = x' + γ Δ, Janizek et al.'s double path integral over
    α, β ∈ [0, 1] depends on γ = αβ only, whose density on (0, 1) is −ln γ, so

        Γ_ij = Δ_i Δ_j ∫ −ln γ · γ ∂²f/∂x_i∂x_j (x(γ)) dγ  +  δ_ij Δ_i ∫ −ln γ · ∂f/∂x_i (x(γ)) dγ

    (the Gauss rule of the weight −ln γ, :func:`log_weight_rule`, exact for f polynomial in the
    gates up to degree 2 ``n_steps`` + 1).
    Integrating by parts, Σ_j Γ_ij = Δ_i ∫ ∂f/∂x_i (x(γ)) dγ, the Integrated Gradients score of
    input i, and Σ_ij Γ_ij = f(x) − f(x'). Γ is symmetric. Hessian rows are computed
    ``batch_size`` at a time: each copy of the structure in one batch gives one row (a gradient
    of its own gradient component), so a point of the path costs ⌈K / batch_size⌉ double
    backward passes.

    Parameters
    ----------
    forward
        Maps ``[S, K]`` inputs to ``[S]`` values, twice differentiable.
    inputs, baseline
        ``[K]`` (or ``[1, K]``) x and x'.
    n_steps
        Quadrature points along the path.
    batch_size
        Rows of the Hessian (structure copies) per model call.

    Returns
    -------
    Tensor
        ``[K, K]`` interactions Γ, in the unit of ``forward``.

    References
    ----------
    Janizek, Sturmfels and Lee, "Explaining Explanations: Axiomatic Feature Interactions for
    Deep Networks", JMLR 22 (2021).
    """
    start, delta = baseline.reshape(-1).detach(), (inputs - baseline).reshape(-1).detach()
    size = delta.numel()
    hessian = delta.new_zeros((size, size))
    gradient = delta.new_zeros(size)
    nodes, weights = log_weight_rule(n_steps)
    for node, weight in zip(nodes.tolist(), weights.tolist()):
        point = start + node * delta
        for rows in torch.arange(size, device=delta.device).split(max(1, batch_size)):
            gates = point.expand(len(rows), size).clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(forward(gates).sum(), gates, create_graph=True)
            if rows[0] == 0:
                gradient += weight * grad[0].detach()
            own = grad.gather(1, rows[:, None]).sum()
            if own.requires_grad:  # else f is linear in these inputs: no Hessian
                (second,) = torch.autograd.grad(own, gates)
                hessian[rows] += weight * node * second
    return delta[:, None] * hessian * delta[None, :] + torch.diag(delta * gradient)


def _integrated_hessians(call: Call) -> tuple[Tensor, float | None]:
    interactions = integrated_hessians(
        call.forward, call.inputs[0], call.baseline[0], call.options["n_steps"], call.batch_size
    )
    return interactions, None


METHODS: dict[str, Method] = {
    method.name: method
    for method in [
        Method(
            "integrated_gradients",
            _integrated_gradients,
            defaults={"n_steps": 64, "integration": "gausslegendre"},
        ),
        Method(
            "saliency",
            _saliency,
            levels=("edge", "atom", "position"),
            defaults={"abs": False},
        ),
        Method("input_x_gradient", _input_x_gradient),
        Method(
            "gradient_shap",
            _gradient_shap,
            defaults={"n_samples": 64, "stdevs": 0.0, "seed": 0},
        ),
        Method("feature_ablation", _feature_ablation, perturbs=True),
        Method(
            "shapley_value_sampling",
            _shapley,
            defaults={"n_samples": 8, "seed": 0, "progress": False},
            perturbs=True,
        ),
        Method(
            "gnn_explainer",
            _learned_mask,
            defaults={
                "epochs": 150,
                "learning_rate": 0.05,
                "size_weight": 0.05,
                "entropy_weight": 0.01,
                "initial_logit": 2.0,
                "seed": 0,
            },
            mask=True,
        ),
        Method(
            "integrated_hessians",
            _integrated_hessians,
            defaults={"n_steps": 16},
            interactions=True,
        ),
    ]
}

#: Leaf modules whose behaviour Captum's DeepLift rules describe exactly.
_DEEPLIFT_MODULES: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Identity,
    nn.ReLU,
    nn.ELU,
    nn.LeakyReLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.Softplus,
)


def deeplift_blockers(model: nn.Module) -> list[str]:
    """Names of module types in ``model`` that Captum's DeepLift rules do not cover.

    DeepLift replaces the gradient of each non-linearity it knows by a finite-difference ratio;
    any other operation (custom activations such as SchNet's shifted softplus, e3nn gates and
    tensor products, the multiplicative continuous filters of every message-passing model) is
    silently treated as linear, which breaks its summation-to-delta property.
    """
    blockers = {
        type(module).__name__
        for module in model.modules()
        if module is not model
        and not isinstance(module, (nn.Sequential, nn.ModuleList, nn.ModuleDict))
        and type(module) not in _DEEPLIFT_MODULES
    }
    return sorted(blockers)


#: Quadratures of Integrated Gradients (Captum's ``method``).
INTEGRATIONS = (
    "gausslegendre",
    "riemann_trapezoid",
    "riemann_middle",
    "riemann_left",
    "riemann_right",
)


def check_options(method: Method, options: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults updated by ``options``; ``TypeError`` naming unknown options."""
    unknown = sorted(set(options) - set(method.defaults))
    if unknown:
        accepted = ", ".join(sorted(method.defaults)) or "none"
        raise TypeError(f"{method.name} has no option {unknown}; it accepts: {accepted}")
    merged = {**method.defaults, **options}
    for key in ("n_steps", "n_samples", "epochs"):
        value = merged.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{key} must be a positive integer, got {value!r}")
        if key in merged:
            merged[key] = int(value)
    if merged.get("integration", INTEGRATIONS[0]) not in INTEGRATIONS:
        raise ValueError(
            f"unknown integration {merged['integration']!r}; choose one of {INTEGRATIONS}"
        )
    if "learning_rate" in merged and not math.isfinite(merged["learning_rate"]):
        raise ValueError("learning_rate must be finite")
    return merged
