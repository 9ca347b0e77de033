"""The evaluation harness: CruxEval-O with trace metrics, and halting."""
