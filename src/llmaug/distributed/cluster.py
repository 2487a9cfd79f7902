"""Joining a Ray cluster, or starting a local Ray: the one place llmaug calls `ray.init`.

    auto                $RAY_ADDRESS when it is set, else a new local Ray on this machine (no dashboard)
    ray://HOST:PORT     a remote cluster through the Ray Client (port 10001 of `ray start --head`)
    HOST:PORT           a cluster's GCS address (port 6379 of `ray start --head`), from a machine of the cluster

A process that is already connected (a Ray worker, or a program that called `ray.init` itself) stays on its
cluster, whatever the address.
"""

from __future__ import annotations

import logging
import os

from llmaug.config import RAY_ADDRESS, RAY_ADDRESS_FORMS
from llmaug.errors import UserError

AUTO = "auto"
INSTALL = "pip install 'llmaug[ray]'"
# What the CLI sets for itself (llmaug never downloads models); workers on other machines need it too.
WORKER_ENV = {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error",
              "TOKENIZERS_PARALLELISM": "false"}


def check_address(address: str, where: str = "--ray") -> str:
    if not RAY_ADDRESS.match(address):
        raise UserError(f"expected {RAY_ADDRESS_FORMS}, got {address!r}", where)
    return address


def import_ray(where: str = "--ray"):
    try:
        import ray
    except ImportError:
        raise UserError(f"Ray is not installed: {INSTALL}", where) from None
    return ray


def connect(address: str | None = AUTO, where: str = "--ray"):
    """The `ray` module, connected to the cluster `address` names (see the module docstring)."""
    ray = import_ray(where)
    if ray.is_initialized():
        return ray
    address = check_address(address or AUTO, where)
    if address == AUTO:
        address = os.environ.get("RAY_ADDRESS") or "local"
    options = {"log_to_driver": False, "logging_level": logging.WARNING}
    if address == "local":
        options["include_dashboard"] = False
    options["runtime_env"] = {"env_vars": {k: os.environ.get(k, v) for k, v in WORKER_ENV.items()}}
    try:
        ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as err:
        raise UserError(f"cannot join the Ray cluster at {address}: {_one_line(err)}", where) from None
    return ray


def node_id() -> str:
    """The Ray node this code runs on."""
    import ray

    return ray.get_runtime_context().get_node_id()


def task_error_cause(err: BaseException) -> BaseException:
    """The exception a Ray task or actor method raised, out of the `RayTaskError` that carries it."""
    cause = getattr(err, "cause", None)
    return cause if isinstance(cause, BaseException) else err


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:300] or type(err).__name__
