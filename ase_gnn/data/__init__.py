"""Labelled data from ASE calculators (generate) and GFN2-xTB molecules (molecules)."""
