"""Test support: a tiny random CWM and a tiny CWM-layout tokenizer, built
offline, for tests and benchmarks. Production code never imports this
package (what loading a checkpoint needs lives in :mod:`neuraldbg.backends`)."""
