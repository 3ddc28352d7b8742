"""Benchmark suite for localbox: ``python -m bench --help``.

Every figure is a paired comparison: each benchmark measures a baseline (raw ingest on the same server stack,
the disk, or a trivial RPC) in the same rounds, interleaved with localbox, because single numbers from the
project machine are unreliable (see docs/performance-ceilings.md).
"""
