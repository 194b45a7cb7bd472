"""Several processes (hosts) training one run: JAX's multi-controller runtime.

Every process runs the same `jppo train` command with its own `--process-id`; together they form
one mesh over all their devices (`jppo.devices`), and process 0 alone logs and checkpoints.

    connect("10.0.0.1:1234", num_processes=2, process_id=1)   # before anything touches a device

Without arguments JAX's own variables are used (JAX_COORDINATOR_ADDRESS, and on SLURM / Open MPI
clusters its auto-detection). JAX aborts the whole process when a coordinator it connects to never
answers; `connect` first checks that the coordinator's address can be reached, so a wrong address
is a clear error instead.
"""

from __future__ import annotations

import errno
import os
import socket
import time

import jax


class CoordinatorError(RuntimeError):
    pass


def _split(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"the coordinator address must be HOST:PORT, got {address!r}")
    return host.strip("[]"), int(port)


def _check_bindable(host: str, port: int, address: str):
    """Process 0 runs the coordinator: its address must be one of this machine's."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise CoordinatorError(f"cannot resolve the coordinator address {address}: {err}") from None
    family, _, _, _, sockaddr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(sockaddr)
        except OSError as err:
            why = ("is not an address of this machine" if err.errno == errno.EADDRNOTAVAIL else
                   "is in use" if err.errno == errno.EADDRINUSE else str(err))
            raise CoordinatorError(f"process 0 runs the coordinator, but {address} {why}") from None


def _wait_reachable(host: str, port: int, address: str, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=max(0.1, min(2.0, deadline - time.monotonic()))):
                return
        except OSError:
            if time.monotonic() >= deadline:
                raise CoordinatorError(f"could not reach the coordinator at {address} within {timeout:g} s "
                                       f"(is process 0 running there?)") from None
            time.sleep(0.2)


def connect(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None,
            timeout: float = 300.0) -> None:
    """`jax.distributed.initialize` after checking the coordinator can be reached within `timeout` s."""
    address = coordinator or os.environ.get("JAX_COORDINATOR_ADDRESS")
    if address is not None and num_processes is not None and process_id is not None:
        if not 0 <= process_id < num_processes:
            raise ValueError(f"--process-id must lie in [0, {num_processes}), got {process_id}")
        host, port = _split(address)
        start = time.monotonic()
        if process_id == 0:
            _check_bindable(host, port, address)
        else:
            _wait_reachable(host, port, address, timeout)
        timeout = max(1.0, timeout - (time.monotonic() - start))
    jax.distributed.initialize(address, num_processes, process_id, initialization_timeout=int(timeout))
