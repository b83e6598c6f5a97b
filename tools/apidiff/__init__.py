"""The API diff: every name and keyword mlx added after 0.26.5, who uses it, and what mlx-portable does.

* :mod:`.surface` records the installed mlx's public surface;
* :mod:`.history` keeps one snapshot per matrix mlx and computes the additions;
* :mod:`.consumers` scans consumer packages (mlx-lm, mlx-vlm) for their mlx uses;
* :mod:`.statuses` says, for each addition, shimmed / not needed / impossible;
* :mod:`.table` renders ``docs/api-diff.md``; :mod:`.check` is the consumer check.

Run ``python -m tools.apidiff --help``.  Nothing here is imported by
``import mlx_portable``.
"""
