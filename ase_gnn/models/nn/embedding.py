"""Learned per-species embeddings."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from ase.data import chemical_symbols
from torch import Tensor, nn


def check_species(numbers: Sequence[int], known: Sequence[int]) -> None:
    """Raise ``ValueError`` naming every element of ``numbers`` that is not in ``known``."""
    unknown_numbers = set(int(z) for z in numbers) - set(known)
    if unknown_numbers:
        unknown = sorted(
            chemical_symbols[z] if 0 < z < len(chemical_symbols) else f"Z={z}"
            for z in unknown_numbers
        )
        names = [chemical_symbols[z] for z in known]
        raise ValueError(f"element(s) {unknown} are not in the model's species {names}")


class SpeciesIndex(nn.Module):
    """Maps atomic numbers Z to indices 0 … S−1 into the model's species list.

    Parameters
    ----------
    species
        The model's atomic numbers, in the order that defines the indices.
    """

    table: Tensor

    def __init__(self, species: Sequence[int]) -> None:
        super().__init__()
        self.species = tuple(int(z) for z in species)
        table = torch.full((len(chemical_symbols),), -1, dtype=torch.long)
        table[list(self.species)] = torch.arange(len(self.species))
        self.register_buffer("table", table, persistent=False)

    def forward(self, numbers: Tensor) -> Tensor:
        """Indices ``[N]`` for atomic numbers ``[N]``; ``ValueError`` for unknown elements."""
        if numbers.numel() == 0:
            return numbers
        out_of_range = int(numbers.min()) < 0 or int(numbers.max()) >= len(chemical_symbols)
        index = self.table[numbers.clamp(0, len(chemical_symbols) - 1)]
        if out_of_range or bool((index < 0).any()):
            check_species(numbers.unique().tolist(), self.species)
        return index


class SpeciesEmbedding(nn.Module):
    """A learned vector ``[F]`` for every species.

    Parameters
    ----------
    num_species
        Number of species S.
    num_features
        Embedding width F.
    """

    def __init__(self, num_species: int, num_features: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_species, num_features)

    def forward(self, species_index: Tensor) -> Tensor:
        """Return ``[N, F]`` embeddings for species indices ``[N]``."""
        return self.embedding(species_index)
