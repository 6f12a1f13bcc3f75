"""An image set's decomposition in shards, here or as Ray tasks, merged exactly.

TEXTSPAN needs only each head's moments (``textspan.Moments``), which add up, so a set splits into
contiguous shards of images computed anywhere: each shard writes its rows into the entry's files and
returns its moments; ``Moments.merge`` combines them (exact, not an average of estimates). The entry is
committed by the process that opened it (``decompose.decompose_image_set(shards=...)``), whole or not
at all.

``ray_runner`` runs the shards as Ray tasks (``ray.init(address)``: a local Ray by default, a cluster
via the address or ``RAY_ADDRESS``). Each task rebuilds the model and the image set from a ``Recipe``
(what the command line names) and checks that it got the same model and images (their cache keys). The
cache directory must be one that every node sees (a shared file system) for a cluster. Ray is optional:
without ``--ray`` nothing here imports it.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .decompose import ROWS, decompose_rows
from .errors import CCSError, DataError
from .mapped import RowFile
from .textspan import Moments


@dataclass(frozen=True)
class Recipe:
    """What a worker needs to rebuild the model and the images of a command, and their keys to check."""
    model: str
    pretrained: str | None
    device: str
    images: str
    n_images: int
    model_key: str
    images_key: str
    n_layers: int = 4
    batch_size: int = 64
    precision: str = "fp32"
    norm: str = "own-mean"       # the decomposition's convention (decompose.py)


def ranges(n: int, k: int) -> list[tuple[int, int]]:
    """k contiguous, nearly equal shards of n images (fewer when n < k). -> [(start, stop), ...]"""
    k = max(1, min(int(k), n))
    cuts = [round(i * n / k) for i in range(k + 1)]
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]


def run_shard(loaded, image_set, paths: dict, shapes: dict, start: int, stop: int, n_layers: int,
              batch_size: int = 64, precision: str = "fp32", norm: str = "own-mean") -> tuple[dict, list[int]]:
    """Decompose images start..stop-1 into the entry's files at ``paths``; -> (moments as arrays, layers)."""
    files = {name: RowFile(paths[name], shapes[name], np.float32, ROWS[name], create=False) for name in ROWS}
    try:
        m, layers = decompose_rows(loaded, image_set, files, start, stop, n_layers, batch_size, precision,
                                   norm=norm)
    finally:
        for f in files.values():
            f.close()
    return m.to_arrays(), layers


def local_runner(loaded, image_set, n_shards: int, n_layers: int, batch_size: int = 64,
                 precision: str = "fp32", norm: str = "own-mean") -> Callable:
    """Shards one after another in this process (what a Ray run does, without Ray)."""
    def run(paths: dict, shapes: dict) -> list[tuple[Moments, list[int]]]:
        out = []
        for a, b in ranges(len(image_set), n_shards):
            arrays, layers = run_shard(loaded, image_set, paths, shapes, a, b, n_layers, batch_size, precision,
                                       norm)
            out.append((Moments.from_arrays(arrays), layers))
        return out

    run.norm = norm  # decompose_image_set checks it against the entry's
    return run


def _ray_task(recipe: Recipe, paths: dict, shapes: dict, start: int, stop: int):
    """In a Ray worker: rebuild, check, decompose one shard."""
    import torch

    from .analysis import resolve_images
    from .models import load_model

    torch.set_num_threads(1)  # one CPU per task; the tasks are the parallelism
    loaded = load_model(recipe.model, recipe.pretrained, device=recipe.device)
    images = resolve_images(recipe.images, n=recipe.n_images)
    if loaded.key != recipe.model_key or images.key != recipe.images_key:
        raise DataError(f"A Ray worker found another model or other images than the driver ({recipe.model} on "
                        f"{recipe.images}): every node needs the same checkpoint and image files at the same paths.")
    return run_shard(loaded, images, paths, shapes, start, stop, recipe.n_layers, recipe.batch_size,
                     recipe.precision, recipe.norm)


def reachable(address: str, timeout: float = 5.0) -> None:
    """A cluster address (HOST:PORT or ray://HOST:PORT) answers a TCP connect within ``timeout`` s:
    ray.init would otherwise wait minutes on a wrong one."""
    scheme = address.partition("://")[0] if "://" in address else ""
    if scheme and scheme != "ray":
        raise DataError(f"--ray {address}: a Ray address is HOST:PORT (ray start --head prints it, port 6379 by "
                        "default) or ray://HOST:PORT (Ray Client), not an http(s) URL such as the dashboard's.")
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # '', 'auto', 'local': Ray's own
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as err:
        raise DataError(f"No Ray cluster answers at {address} ({err}): start one there (ray start --head "
                        "prints its address), fix --ray/RAY_ADDRESS, or leave the address out for a local Ray.") from err
    # something listens there: is it Ray? ray.init would retry a non-Ray server forever, so ask it
    # in a child process that can be stopped
    probe = ("import ray, sys; ray.init(address=sys.argv[1], include_dashboard=False, log_to_driver=False, "
             "logging_level='ERROR'); ray.shutdown()")
    try:
        done = subprocess.run([sys.executable, "-c", probe, address], capture_output=True, timeout=PROBE_S)
        ok = done.returncode == 0
    except subprocess.TimeoutExpired:
        ok = False
    if not ok:
        raise DataError(f"Something answers at {address}, but Ray did not connect to it within {PROBE_S} s: it is "
                        "not a Ray cluster's head (ray start --head prints the address to use), or that cluster "
                        "runs another Ray version than this one (" + _ray_version() + ").")


PROBE_S = 60  # seconds for a cluster to answer the probe


def _ray_version() -> str:
    try:
        import ray

        return f"ray {ray.__version__}"
    except ImportError:
        return "Ray is not installed here: pip install ray==2.60.0"


def ray_runner(recipe: Recipe, n_images: int, address: str | None = None, n_shards: int | None = None,
               progress: Callable[[int, int], None] | None = None) -> Callable:
    """Shards as Ray tasks (one CPU each); ``n_shards`` default: the cluster's CPUs."""
    try:
        import ray
    except ImportError as err:
        raise DataError("--ray needs Ray, which is not installed: pip install 'ray==2.60.0' (or run without "
                        "--ray: the same result in this process).") from err

    def run(paths: dict, shapes: dict) -> list[tuple[Moments, list[int]]]:
        started = not ray.is_initialized()
        if started:
            reachable(address or os.environ.get("RAY_ADDRESS", ""))
            try:
                ray.init(address=address or None, include_dashboard=False, log_to_driver=False,
                         logging_level="ERROR")
            except Exception as err:  # no cluster at that address, and the like
                raise DataError(f"Could not start or reach Ray ({address or 'local'}): {err}. Check the "
                                "address (ray start --head prints it), or leave out the address for a local Ray.") from err
        try:
            k = n_shards or max(1, int(ray.cluster_resources().get("CPU", 1)))
            task = ray.remote(num_cpus=1, max_retries=0)(_ray_task)
            parts = ranges(n_images, k)
            refs = [task.remote(recipe, paths, shapes, a, b) for a, b in parts]
            done, results = 0, {}
            pending = list(refs)
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                for ref in ready:
                    i = refs.index(ref)
                    try:
                        results[i] = ray.get(ref)
                    except ray.exceptions.RayTaskError as err:
                        cause = getattr(err, "cause", None)
                        if isinstance(cause, CCSError):
                            raise cause from None
                        raise DataError(f"A Ray shard failed: {type(cause or err).__name__}: "
                                        f"{str(cause or err).splitlines()[0][:300]}") from None
                    done += parts[i][1] - parts[i][0]
                    if progress:
                        progress(done, n_images)
            return [(Moments.from_arrays(results[i][0]), results[i][1]) for i in range(len(parts))]
        finally:
            if started:
                ray.shutdown()

    run.norm = recipe.norm  # decompose_image_set checks it against the entry's
    return run
