"""The baseline / Mixup / CutMix / RM models derived from one RM config (Table 10's rows)."""
import copy

from mmrm.analysis.cost import count_params
from mmrm.analysis.variants import build_model, derive_variants
from mmrm.utils import load_config


def test_derive_variants(tiny_rm):
    cfg = load_config(tiny_rm['rm_path'])
    variants, sources = derive_variants(cfg, tiny_rm['rm_path'])
    assert list(variants) == ['baseline', 'mixup', 'cutmix', 'rm']
    base = variants['baseline']
    assert base['type'] == 'ImageClassifier' and 'roi_head' not in base
    assert not (base.get('train_cfg') or {}).get('augments')
    assert base['data_preprocessor'].get('type') in (None, 'ClsDataPreprocessor')
    assert base['head']['loss']['use_soft'] is False
    assert variants['mixup']['train_cfg']['augments'] == dict(type='Mixup', alpha=0.4)
    assert sources['mixup'][0] == 'sibling config'
    assert variants['cutmix']['train_cfg']['augments'] == dict(type='CutMix', alpha=1.0)
    assert sources['cutmix'][0] == 'default'
    assert variants['rm']['type'] == 'RMClassifier'
    for name in ('mixup', 'cutmix', 'rm'):
        assert variants[name]['head']['loss']['use_soft'] is True
    # every variant builds and shares the network: same backbone / head shapes
    models = {k: build_model(v) for k, v in variants.items()}
    n = count_params(models['baseline'])
    assert all(count_params(models[k]) == n for k in ('mixup', 'cutmix'))
    # shared H' adds no parameter at all
    shared = copy.deepcopy(variants['rm'])
    shared['roi_head']['share_fc'] = True
    assert count_params(build_model(shared)) == n
