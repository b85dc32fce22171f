"""Simulation helpers: batched evaluation and relaxation (batched), NVE MD (md)."""
