"""Analysis of structures and models: graph diagnostics, embeddings, clustering and anomaly scores,
and their plots."""
