"""Where a figure was measured, and what a run on this machine's cores should ask for."""
import os
import platform


def cpu_model() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``), for the record of where a result came
    from: times differ between CPU models, and so do results, slightly (their oneDNN kernels
    accumulate in other orders), while a rerun on the same machine repeats them."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cores_available() -> int:
    """CPU cores this process may run on (its affinity mask: a Slurm or taskset allotment), not
    the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def loader_workers(cores: int) -> int:
    """Data-loader worker processes for a CPU run given ``cores`` cores: none up to 2 cores,
    where workers only compete with torch's compute threads (measured on this project's 2-core
    machines with the Fashion-MNIST demo: ``num_workers=2`` 0.50-0.55 s/iter against 0.38-0.47
    with ``num_workers=0``; the in-memory dataset's crop and flip cost far less than a step);
    beyond that a quarter of the cores (at most 8) decode while the rest compute."""
    return 0 if cores <= 2 else min(8, cores // 4)


def fit_loaders_to_cores(cfg, cores: int) -> None:
    """Set ``num_workers`` (:func:`loader_workers`) and ``persistent_workers`` of every data
    loader of an MMEngine config in place, for a run that gets ``cores`` cores."""
    workers = loader_workers(cores)
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(name)
        if loader:
            loader['num_workers'] = workers
            loader['persistent_workers'] = workers > 0
