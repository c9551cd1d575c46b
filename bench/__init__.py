"""The benchmarks: quality studies, speed and memory, robustness; each a module run as
``python -m bench.<kind>.<name>`` from the checkout's root (see docs/benchmarks.md)."""
