"""One real local Ray for the whole session (2 CPUs, no dashboard), started by the first test that asks for it."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ray_cluster():
    """The `ray` module, connected to a fresh local Ray; its GCS address is `ray_cluster.address`."""
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def ray_address(ray_cluster) -> str:
    return ray_cluster.get_runtime_context().gcs_address
