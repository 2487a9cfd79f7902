"""Scale out on Ray (`pip install 'llmaug[ray]'`), behind the seams the rest of llmaug already has:

    teacher.py   `ray:SPEC` teacher backend: the in-process backend SPEC names, in N Ray actors (replicas)
    training.py  `RayFitRunner`: the k-fold held-out students of a round as Ray tasks, one per fold
    grid.py      `RayCellRunner`: `llmaug bench --ray` runs grid cells as Ray tasks
    cluster.py   joining a cluster or starting a local Ray (`--ray auto|ray://HOST:PORT|HOST:PORT`, $RAY_ADDRESS)

The driver keeps what must stay in one place: the teacher's cache, budget and batch composition, the run
directory, the grid's tables. Nothing outside this package imports Ray, and importing it does not either: Ray is
imported on first use.
"""
