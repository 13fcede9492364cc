"""Mixed precision on CPU.

``AmpOptimWrapper`` asserts that CUDA (or NPU/MLU/MUSA) is available. :class:`CPUAmpOptimWrapper`
is the same wrapper for CPU: bfloat16 autocast (the only dtype CPU autocast supports in
MMEngine) and a CPU ``GradScaler``. :func:`setup_amp` (what ``tools/train.py --amp`` calls)
picks the right wrapper for the machine.
"""
import torch
from mmengine.config import Config
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

from .distributed import cuda_available

__all__ = ['CPUAmpOptimWrapper', 'setup_amp']


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(AmpOptimWrapper):
    """``AmpOptimWrapper`` for CPU: bfloat16 autocast with a CPU loss scaler.

    MMEngine's ``AmpOptimWrapper`` refuses to be built without CUDA/NPU/MLU/MUSA, and CPU
    autocast in MMEngine supports bfloat16 only. This wrapper behaves like ``AmpOptimWrapper``
    otherwise: ``loss_scale`` (``'dynamic'``, a float or a dict of ``GradScaler`` arguments)
    builds a ``torch.amp.GradScaler('cpu')`` (bfloat16 does not need loss scaling, but a
    scaler keeps the checkpoint's ``loss_scaler`` entry compatible with ``AmpOptimWrapper`` on
    a GPU machine, and skips steps whose gradients are not finite).

    Args:
        loss_scale: as in ``AmpOptimWrapper``. Defaults to ``'dynamic'``.
        dtype: autocast dtype; only ``'bfloat16'`` (default) is supported on CPU.
        **kwargs: passed to :class:`mmengine.optim.OptimWrapper`.
    """

    def __init__(self, loss_scale='dynamic', dtype='bfloat16', **kwargs):
        OptimWrapper.__init__(self, **kwargs)
        self._scale_update_param = None
        if loss_scale == 'dynamic':
            self.loss_scaler = torch.amp.GradScaler('cpu')
        elif isinstance(loss_scale, float):
            self._scale_update_param = loss_scale
            self.loss_scaler = torch.amp.GradScaler(
                'cpu', init_scale=loss_scale)
        elif isinstance(loss_scale, dict):
            self.loss_scaler = torch.amp.GradScaler('cpu', **loss_scale)
        else:
            raise TypeError('loss_scale must be of type float, dict, or '
                            f'"dynamic", but got {loss_scale}')
        if dtype is None:
            dtype = torch.bfloat16
        if isinstance(dtype, str):
            assert dtype in self.valid_dtypes, (
                f'dtype should be any of {self.valid_dtypes}, got {dtype}')
            dtype = getattr(torch, dtype)
        if dtype != torch.bfloat16:
            raise ValueError('CPU autocast supports only bfloat16, got '
                             f'{dtype}')
        self.cast_dtype = dtype


def setup_amp(cfg: Config) -> Config:
    """Switch ``cfg.optim_wrapper`` to mixed precision (what ``--amp`` does).

    With CUDA: ``type='AmpOptimWrapper'`` and ``loss_scale='dynamic'`` unless the config sets a
    loss scale (float16 autocast, as in every OpenMMLab repo). Without CUDA:
    ``type='CPUAmpOptimWrapper'`` with ``dtype='bfloat16'`` (CPU float16 autocast is not
    supported by MMEngine and would be slow and lossy). Every other key of the optim wrapper
    (optimizer, paramwise_cfg, clip_grad, accumulative_counts, ...) is kept.
    """
    optim_wrapper = cfg.get('optim_wrapper', None)
    if optim_wrapper is None:
        raise ValueError('--amp needs an `optim_wrapper` in the config')
    wrapper_type = optim_wrapper.get('type', 'OptimWrapper')
    if wrapper_type not in ('OptimWrapper', 'AmpOptimWrapper',
                            'CPUAmpOptimWrapper'):
        # a custom wrapper (e.g. DeepSpeed / ColossalAI): leave it alone
        raise ValueError(
            f'--amp only converts OptimWrapper/AmpOptimWrapper, got '
            f'{wrapper_type}; set mixed precision in the config instead')
    if cuda_available():
        optim_wrapper.type = 'AmpOptimWrapper'
        optim_wrapper.setdefault('loss_scale', 'dynamic')
    else:
        optim_wrapper.type = 'CPUAmpOptimWrapper'
        optim_wrapper.setdefault('loss_scale', 'dynamic')
        optim_wrapper.dtype = 'bfloat16'
    return cfg
