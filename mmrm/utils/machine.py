"""Where a figure was measured."""
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
