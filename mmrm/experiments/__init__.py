"""The experiment wing: what runs, keys, records and summarises the measured tables
(DESIGN.md §6). One concern a module:

- :mod:`.keys`: a run is its key (config digest, options, data files, checkpoints, seed);
- :mod:`.records`: atomic JSON records, the commit and library versions they carry;
- :mod:`.run`: one keyed run (folder, attempts, logs, record);
- :mod:`.launcher`: runs them through submitit (local processes or Slurm) or inline;
- :mod:`.cli`: the launcher options every experiment tool shares;
- :mod:`.stats`: mean / std, paired t intervals, Holm's correction, seeds for a power target;
- :mod:`.work_dirs` and :mod:`.evaluate`: what a finished MMEngine run left, scored on test;
- :mod:`.sweep`: alpha / omega sweeps (paper Figs. 4-5);
- :mod:`.compare`: the offline Tables 1 / 6's runs, :mod:`.compare_report` their table;
  :mod:`.ranking` and :mod:`.ranking_report`: the ranking study;
- :mod:`.transfer`: the downstream chain by stage, and its table;
- :mod:`.precise_bn`: a downstream run rescored with recomputed BatchNorm statistics.

Not imported by ``import mmrm``: the experiment tools import what they use.
"""
from .cli import add_launcher_args, launcher_from_args, slurm_parameters
from .keys import KEY_FIELDS, RunKey, config_digest, file_sha256, files_digest
from .launcher import LAUNCHERS, Launcher
from .records import REPO_ROOT, git_commit, library_versions, read_json, write_json_atomic
from .run import Run, RunContext, fmt_time, tool_env
from .stats import holm, holm_intervals, mean_std, paired_t, seeds_for_power

__all__ = [
    'KEY_FIELDS', 'RunKey', 'config_digest', 'file_sha256', 'files_digest', 'REPO_ROOT',
    'git_commit', 'library_versions', 'read_json', 'write_json_atomic', 'Run', 'RunContext',
    'fmt_time', 'tool_env', 'LAUNCHERS', 'Launcher', 'add_launcher_args', 'launcher_from_args',
    'slurm_parameters', 'mean_std', 'paired_t', 'holm', 'holm_intervals', 'seeds_for_power'
]
