"""The experiment wing: what runs, keys, records and summarises the measured tables.

- :mod:`.stats`: mean / std, paired t intervals, Holm's correction, seeds for a power target.

Not imported by ``import mmrm``: the experiment tools import what they use.
"""
