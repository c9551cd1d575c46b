"""Robustness: injected faults, fuzzing, and the same-results and same-chunks checks of a refactor."""
