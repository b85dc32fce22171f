"""ASE calculators: the thin converter (calculator), committees, results on request (extras), input
checks and the ASE plugin entry point."""
