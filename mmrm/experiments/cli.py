"""The launcher options every experiment tool shares, and the :class:`~.launcher.Launcher`
they make (local processes or Slurm jobs)."""
import argparse
import os
from typing import Any, Callable, Dict

from .launcher import LAUNCHERS, Launcher

__all__ = ['add_launcher_args', 'slurm_parameters', 'launcher_from_args']


def add_launcher_args(parser: argparse.ArgumentParser, jobs: int = 1) -> None:
    """The launcher options every experiment tool shares."""
    group = parser.add_argument_group('launcher')
    group.add_argument('--launcher', choices=LAUNCHERS, default='local',
                       help='local: submitit.LocalExecutor on this machine; slurm: one sbatch '
                       'job per run (submitit.SlurmExecutor); inline: in this process, one '
                       'run after the other (debugging)')
    group.add_argument('--jobs', type=int, default=jobs,
                       help=f'runs at once (default {jobs})')
    group.add_argument('--threads', type=int, default=None,
                       help='OpenMP threads per run (default: cores / jobs)')
    group.add_argument('--partition', default=None, help='slurm: partition')
    group.add_argument('--time-min', type=int, default=24 * 60,
                       help='slurm: time limit of a job in minutes (default one day)')
    group.add_argument('--gpus-per-run', type=int, default=0,
                       help='slurm: GPUs of a job (default 0)')
    group.add_argument('--slurm-option', nargs='+', default=[], metavar='KEY=VALUE',
                       help='slurm: more sbatch options, e.g. qos=high account=lab')


def slurm_parameters(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Dict:
    """The sbatch parameters of :func:`add_launcher_args` options, after checking them
    (``args.threads`` is filled in if it was left to its default)."""
    if args.jobs < 1:
        parser.error('--jobs must be >= 1')
    if args.threads is None:
        args.threads = max(1, (os.cpu_count() or 1) // args.jobs)
    slurm: Dict[str, Any] = dict(time=args.time_min, cpus_per_task=args.threads, nodes=1,
                                 ntasks_per_node=1)
    if args.partition:
        slurm['partition'] = args.partition
    if args.gpus_per_run:
        slurm['gpus_per_node'] = args.gpus_per_run
    extra = {}
    for item in args.slurm_option:
        k, sep, v = item.partition('=')
        if not sep or not k:
            parser.error(f'--slurm-option {item!r}: expected KEY=VALUE')
        extra[k] = v
    if extra:
        slurm['additional_parameters'] = extra
    return slurm


def launcher_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace,
                       folder: str, log: Callable[[str], None] = print) -> Launcher:
    """The :class:`Launcher` of :func:`add_launcher_args` options."""
    slurm = slurm_parameters(parser, args)
    return Launcher(args.launcher, folder=folder, jobs=args.jobs, slurm=slurm, log=log)
