"""Analysis of many runs: loading run directories into tidy frames, aggregates, statistics and plots.

Nothing here imports torch: ``nbh compare``, ``nbh figures`` and ``nbh report`` start fast.
"""
