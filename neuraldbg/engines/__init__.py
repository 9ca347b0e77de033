"""Engines produce frames for a Simulation: a model through the CWM codec,
or the ground-truth trace of a real run."""
