"""Config-time checks of MMPretrain training recipes around an RM model.

MMPretrain's ``SwitchRecipeHook`` builds its batch augments when the Runner is built but
assigns them only at their epoch; RM's data preprocessor refuses an augment it cannot run
(:func:`~mmrm.models.data_preprocessors.rm_data_preprocessor.check_rm_batch_augments`), which
would stop a long run at the switch. :func:`check_rm_recipe` refuses such a config before the
first step (``tools/train.py`` calls it), naming the option.
"""
from typing import Iterable, Tuple

__all__ = ['check_rm_recipe', 'is_rm_model']


def is_rm_model(model) -> bool:
    """Whether a model config trains with RM's data preprocessor (an ``RMClassifier``)."""
    if not isinstance(model, dict):
        return False
    pre = model.get('data_preprocessor') or {}
    return model.get('type') in ('RMClassifier', 'mmrm.RMClassifier') or (
        isinstance(pre, dict) and pre.get('type') in ('RMDataPreprocessor',
                                                      'mmrm.RMDataPreprocessor'))


def _switches(cfg) -> Iterable[Tuple[str, object]]:
    """``(option name, value)`` of every ``batch_augments`` a ``SwitchRecipeHook`` assigns."""
    for i, hook in enumerate(cfg.get('custom_hooks') or []):
        if not isinstance(hook, dict) or not str(hook.get('type', '')).endswith(
                'SwitchRecipeHook'):
            continue
        for j, recipe in enumerate(hook.get('schedule') or []):
            if isinstance(recipe, dict) and 'batch_augments' in recipe:
                yield (f'custom_hooks[{i}].schedule[{j}].batch_augments '
                       f"(action_epoch={recipe.get('action_epoch')})"), recipe['batch_augments']


def check_rm_recipe(cfg) -> None:
    """Refuse, with a ValueError naming the option, a ``SwitchRecipeHook`` that would switch
    an RM model to batch augments RM cannot run. Allowed: ``None`` (RM off: plain training from
    then on) or ``dict(augments=dict(type='RecursiveMixBatchAugment', ...))`` without
    ``probs`` (RM on, from a fresh history); the augment is built here, so a bad alpha is
    reported now too. Configs of other models pass unchecked."""
    from mmrm.utils.config import model_config
    if not is_rm_model(model_config(cfg) if cfg.get('model') else None):
        return
    from mmpretrain.models.utils import RandomBatchAugment

    from mmrm.models.data_preprocessors.rm_data_preprocessor import check_rm_batch_augments
    for name, value in _switches(cfg):
        if value is not None and not isinstance(value, dict):
            raise ValueError(f'{name}: expected None or a dict, got {value!r}')
        try:
            built = None if value is None else RandomBatchAugment(**value)
            check_rm_batch_augments(built, owner=name)
        except (ValueError, TypeError, KeyError, AssertionError) as exc:
            if str(exc).startswith(name):
                raise
            raise ValueError(f'{name}: {exc}') from exc
