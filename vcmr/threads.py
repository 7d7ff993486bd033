"""CPU threads on shared machines: one rule, applied once when the ``vcmr`` command starts
(a leaf module: the standard library only; torch is touched only when already imported).

    configure_threads()          # first thing in vcmr.cli.main, before torch is imported
    thread_count()               # the count the rule gives in this process
    available_cpus()             # CPUs this process may use (affinity, cgroup quota)

The rule (also in docs/training.md, "Threads on shared machines"):

* ``VCMR_THREADS=N`` (N >= 1): N threads, whatever else is set.
* ``VCMR_THREADS=torch``: vcmr changes nothing (torch's and OpenMP's own defaults, the
  behaviour before this rule; benchmarks/shared_machine.py measures it as "before").
* otherwise, a user's ``OMP_NUM_THREADS`` is kept; when it is unset, vcmr sets it to the
  physical cores among the CPUs this process may run on (``os.sched_getaffinity``: taskset,
  Slurm and container cpusets), capped by the CPU quota of its cgroup (``cpu.max``, rounded up;
  Docker ``--cpus``, Kubernetes limits), at least 1. The count does not look at the machine's
  load: it is fixed by how the process was started, so two runs on the same allocation use the
  same threads (and the same floating-point reduction order).
* unless the user set them, ``OMP_WAIT_POLICY=PASSIVE`` (GNU OpenMP, which PyTorch's Linux
  wheels use) and ``KMP_BLOCKTIME=0`` (Intel OpenMP): a thread that waits for work sleeps at
  once instead of spinning on a core that another process (or this one's other threads) needs.
  Spinning was the cause of vcmr's slowdown on loaded machines (benchmarks/README.md,
  "Shared machines").

The environment variables only take effect when set before the OpenMP runtime starts, i.e.
before torch is first imported: ``vcmr.cli.main`` calls :func:`configure_threads` before any
subcommand imports torch; child processes (data-loader workers, decoding pools) inherit them.
When torch is already imported (vcmr's CLI called from Python), the thread count is applied
with ``torch.set_num_threads`` and the wait policy applies to child processes only. Library
users (``import vcmr``) who want the same can call :func:`configure_threads` before importing
torch, or set the variables themselves.
"""
from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from vcmr.errors import VcmrError

__all__ = ["ENV", "OPENMP_DEFAULTS", "available_cpus", "physical_cores", "cgroup_cpu_limit",
           "thread_count", "configure_threads"]

ENV = "VCMR_THREADS"
LEAVE_ALONE = "torch"
OPENMP_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}
SYS_CPU = Path("/sys/devices/system/cpu")
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def _affinity() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return set(range(os.cpu_count() or 1))


def physical_cores(cpus: set[int], sys_cpu: Path = SYS_CPU) -> int:
    """Distinct physical cores among logical CPUs ``cpus`` (hyper-threads of one core count
    once), from sysfs topology; ``len(cpus)`` where the topology cannot be read."""
    cores = set()
    for cpu in cpus:
        topo = sys_cpu / f"cpu{cpu}" / "topology"
        try:
            cores.add(((topo / "physical_package_id").read_text().strip(),
                       (topo / "core_id").read_text().strip()))
        except OSError:
            return len(cpus)
    return max(1, len(cores))


def cgroup_cpu_limit(path: Path = CGROUP_CPU_MAX) -> int | None:
    """The cgroup v2 CPU quota in whole CPUs (rounded up), or None when unlimited or unknown."""
    try:
        quota, period = path.read_text().split()[:2]
        if quota == "max":
            return None
        return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        return None


def available_cpus(cpus: set[int] | None = None, sys_cpu: Path = SYS_CPU,
                   cgroup: Path = CGROUP_CPU_MAX) -> int:
    """Physical cores this process may run on, capped by its cgroup CPU quota; at least 1."""
    n = physical_cores(_affinity() if cpus is None else cpus, sys_cpu)
    limit = cgroup_cpu_limit(cgroup)
    return max(1, min(n, limit) if limit else n)


def _positive(value: str, name: str) -> int:
    try:
        n = int(value.strip())
    except ValueError:
        n = 0
    if n < 1:
        raise VcmrError(f"{name}={value!r} is not a thread count: give a whole number >= 1"
                        + (f", or {LEAVE_ALONE!r} to keep torch's own defaults" if name == ENV else "")
                        + f" (or unset {name})")
    return n


def thread_count(environ=None, **cpu_sources) -> int | None:
    """Threads by the rule in the module docstring; None for ``VCMR_THREADS=torch``.
    ``cpu_sources`` (``cpus``, ``sys_cpu``, ``cgroup``) are passed to :func:`available_cpus`."""
    env = os.environ if environ is None else environ
    own = env.get(ENV, "").strip()
    if own.lower() == LEAVE_ALONE:
        return None
    if own:
        return _positive(own, ENV)
    if env.get("OMP_NUM_THREADS", "").strip():
        return _positive(env["OMP_NUM_THREADS"], "OMP_NUM_THREADS")
    return available_cpus(**cpu_sources)


def configure_threads(environ=None, **cpu_sources) -> int | None:
    """Apply the rule: set the OpenMP variables the user did not set, ``OMP_NUM_THREADS`` to
    the thread count (``VCMR_THREADS`` wins over a user's value), and, when torch is already
    imported, ``torch.set_num_threads``. Returns the count (None: ``VCMR_THREADS=torch``)."""
    env = os.environ if environ is None else environ
    n = thread_count(env, **cpu_sources)
    if n is None:
        return None
    for key, value in OPENMP_DEFAULTS.items():
        env.setdefault(key, value)
    env["OMP_NUM_THREADS"] = str(n)
    torch = sys.modules.get("torch")
    if torch is not None and environ is None and torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
