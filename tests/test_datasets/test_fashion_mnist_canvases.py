"""The offline detection / segmentation data: Fashion-MNIST items composed on canvases, written as
COCO instances (pycocotools, mmdet's CocoDataset) and mmseg label maps, in three disjoint splits
(train / val carves of the training file, test from the test file)."""
import json
import subprocess
import sys

import numpy as np
import pytest

from tests.utils import REPO_ROOT, load_tool, tool_env, write_fashion_mnist

from mmrm.datasets import (CanvasOptions, FashionMNISTMissing, canvas_dataset_ready,
                           compose_canvas, load_fashion_mnist, split_indices,
                           write_canvas_dataset)

TOOL = str(REPO_ROOT / 'tools/dataset_converters/fashion_mnist_canvases.py')


def split_marked_fashion_mnist(root, n_train=40, n_test=20):
    """IDX files whose items tell their file: every pixel of an item of the training file is odd,
    of the test file even (and never 0), on a black border, so a canvas pixel names the file it
    came from."""
    rng = np.random.RandomState(0)
    write_fashion_mnist(root, n_train=n_train, n_test=n_test)
    from tests.utils import _write_idx
    for prefix, n, parity in (('train', n_train, 1), ('t10k', n_test, 0)):
        items = np.zeros((n, 28, 28), np.uint8)
        body = rng.randint(20, 120, (n, 20, 20)) * 2 + parity  # 40-239, parity of the split
        items[:, 4:24, 4:24] = body
        _write_idx(root / f'{prefix}-images-idx3-ubyte', items)
    return root


@pytest.fixture(scope='module')
def canvases(tmp_path_factory):
    root = tmp_path_factory.mktemp('canvas')
    src = split_marked_fashion_mnist(root / 'fmnist')
    # max_scale 1 keeps resized items at 28 px and their grey values exact (parity test)
    opts = CanvasOptions(train_num=12, val_num=6, size=64, min_items=2, max_items=4,
                         min_scale=1.0, max_scale=1.0, max_overlap=0.2, seed=3)
    meta = write_canvas_dataset(str(src), str(root / 'out'), opts, log=lambda *_: None)
    return dict(root=root / 'out', src=src, opts=opts, meta=meta)


COUNTS = dict(train=12, val=6, test=6)  # test_num defaults to val_num


def test_coco_annotations_load_and_masks_lie_in_their_boxes(canvases):
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    root = canvases['root']
    assert canvases['meta']['counts'] == COUNTS
    for split, n in COUNTS.items():
        coco = COCO(str(root / 'annotations' / f'instances_{split}.json'))
        assert len(coco.getImgIds()) == n
        assert [c['name'] for c in coco.loadCats(coco.getCatIds())][:2] == ['T-shirt/top',
                                                                           'Trouser']
        anns = coco.loadAnns(coco.getAnnIds())
        assert len(anns) == canvases['meta']['instances'][split] >= 2 * n
        for ann in anns:
            mask = coco.annToMask(ann).astype(bool)
            ys, xs = np.nonzero(mask)
            x, y, w, h = ann['bbox']
            # the box is the mask's tight box: every mask pixel inside, every side touched
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x, y, x + w, y + h)
            assert ann['area'] == mask.sum() == mask_utils.area(ann['segmentation'])
            assert ann['iscrowd'] == 0 and 1 <= ann['category_id'] <= 10


def test_label_maps_match_the_instances_and_hold_valid_values(canvases):
    import cv2
    from pycocotools.coco import COCO
    root = canvases['root']
    coco = COCO(str(root / 'annotations' / 'instances_val.json'))
    for img in coco.loadImgs(coco.getImgIds()):
        seg = cv2.imread(str(root / 'seg_maps' / 'val' / img['file_name']), cv2.IMREAD_UNCHANGED)
        image = cv2.imread(str(root / 'images' / 'val' / img['file_name']), cv2.IMREAD_UNCHANGED)
        assert seg.dtype == np.uint8 and seg.shape == image.shape == (64, 64)
        assert set(np.unique(seg)) <= set(range(11))
        expected = np.zeros_like(seg)
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=img['id'])):
            expected[coco.annToMask(ann).astype(bool)] = ann['category_id']
        assert np.array_equal(seg, expected)  # visible masks do not overlap
        assert np.array_equal(seg > 0, image > 0)  # labelled exactly where an item is


def test_train_and_val_canvases_use_only_training_file_items_and_test_only_test_items(canvases):
    import cv2
    root = canvases['root']
    for split, parity in (('train', 1), ('val', 1), ('test', 0)):
        for f in sorted((root / 'images' / split).iterdir()):
            pixels = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
            values = pixels[pixels > 0]
            assert values.size and np.all(values % 2 == parity), (split, f.name)


def _sources(root, split):
    anns = json.loads((root / 'annotations' / f'instances_{split}.json').read_text())
    return anns, [(a['fashion_mnist_file'], a['fashion_mnist_index'])
                  for a in anns['annotations']]


def test_the_three_splits_draw_from_disjoint_items(canvases):
    """Every instance names its item (file, index); the train and val canvases' items lie in the
    train / val carves of FashionMNISTSplit, the test canvases' in the test file, no item is in
    two splits, and the named item IS the one drawn (its pixels, found at some offset)."""
    import cv2
    root, src = canvases['root'], canvases['src']
    labels = {'train': np.arange(40) % 10, 'test': np.arange(20) % 10}  # write_fashion_mnist
    carve = dict(train=set(split_indices(labels['train'], 'train')),
                 val=set(split_indices(labels['train'], 'val')), test=set(range(20)))
    assert carve['train'] and carve['val'] and not carve['train'] & carve['val']
    files = {}
    for name in ('train', 't10k'):
        files[name] = np.frombuffer((src / f'{name}-images-idx3-ubyte').read_bytes(), np.uint8,
                                    offset=16).reshape(-1, 28, 28)
    seen = {}
    for split in COUNTS:
        anns, sources = _sources(root, split)
        assert len(sources) == canvases['meta']['instances'][split]
        want = 'test' if split == 'test' else 'train'
        assert {f for f, _ in sources} == {want}
        assert {i for _, i in sources} <= carve[split], split
        seen[split] = set(sources)
        images = {im['id']: cv2.imread(str(root / 'images' / split / im['file_name']),
                                       cv2.IMREAD_UNCHANGED) for im in anns['images']}
        for a in anns['annotations']:
            x, y, w, h = (int(v) for v in a['bbox'])
            item = files['t10k' if want == 'test' else 'train'][a['fashion_mnist_index']]
            assert a['category_id'] - 1 == labels[want][a['fashion_mnist_index']]
            canvas = images[a['image_id']]
            from pycocotools import mask as mask_utils
            mask = mask_utils.decode(a['segmentation']).astype(bool)
            found = False
            for oy in range(max(0, y + h - 28), min(y, 64 - 28) + 1):
                for ox in range(max(0, x + w - 28), min(x, 64 - 28) + 1):
                    placed = np.zeros((64, 64), np.uint8)
                    placed[oy:oy + 28, ox:ox + 28] = item
                    if np.array_equal(placed[mask], canvas[mask]):
                        found = True
                        break
                if found:
                    break
            assert found, (split, a['id'])
    assert not seen['train'] & seen['val'] and not seen['train'] & seen['test'] and \
        not seen['val'] & seen['test']


def test_load_fashion_mnist_gives_the_carves(tmp_path):
    src = write_fashion_mnist(tmp_path / 'fm', n_train=36, n_test=10)
    labels = np.arange(36) % 10
    for split in ('train', 'val'):
        images, lab, idx = load_fashion_mnist(src, split, with_indices=True)
        assert np.array_equal(idx, split_indices(labels, split))
        assert np.array_equal(lab, labels[idx]) and len(images) == len(idx)
    assert len(load_fashion_mnist(src, 'test')[0]) == 10
    assert len(load_fashion_mnist(src, 'val')[0]) + len(load_fashion_mnist(src, 'train')[0]) \
        == 36
    with pytest.raises(ValueError, match='split must be one of'):
        load_fashion_mnist(src, 'holdout')


def test_overlap_is_bounded():
    rng = np.random.default_rng(0)
    items = np.full((10, 28, 28), 200, np.uint8)  # full squares: overlap is easy to measure
    labels = np.arange(10, dtype=np.uint8)
    opts = CanvasOptions(size=48, min_items=4, max_items=4, min_scale=1., max_scale=1.,
                         max_overlap=0.1)
    for _ in range(20):
        _, instances = compose_canvas(rng, items, labels, opts)
        for inst in instances:  # each keeps at least 1 - 3 x 10 % of its 28 x 28 square
            assert inst['mask'].sum() >= 0.7 * 28 * 28
        union = np.zeros((48, 48), int)
        for inst in instances:
            union += inst['mask']
        assert union.max() <= 1


def test_deterministic_from_the_seed_and_kept_when_unchanged(tmp_path):
    src = write_fashion_mnist(tmp_path / 'fm', n_train=30, n_test=10)
    opts = CanvasOptions(train_num=4, val_num=3, size=48, seed=7)
    assert opts.test_num == 3  # as many as val
    a = write_canvas_dataset(src, str(tmp_path / 'a'), opts, log=lambda *_: None)
    b = write_canvas_dataset(src, str(tmp_path / 'b'), opts, log=lambda *_: None)
    for rel in ('annotations/instances_train.json', 'annotations/instances_val.json',
                'annotations/instances_test.json', 'images/train/000003.png',
                'seg_maps/val/000002.png', 'images/test/000002.png'):
        assert (tmp_path / 'a' / rel).read_bytes() == (tmp_path / 'b' / rel).read_bytes()
    assert a == b and canvas_dataset_ready(str(tmp_path / 'a'), opts)
    c = write_canvas_dataset(src, str(tmp_path / 'c'), CanvasOptions(train_num=4, val_num=3,
                                                                     size=48, seed=8),
                             log=lambda *_: None)
    assert c['options']['seed'] == 8
    assert ((tmp_path / 'a/images/train/000000.png').read_bytes() !=
            (tmp_path / 'c/images/train/000000.png').read_bytes())
    # the val and test splits do not depend on how many train canvases there are
    d = tmp_path / 'd'
    write_canvas_dataset(src, str(d), CanvasOptions(train_num=2, val_num=3, size=48, seed=7),
                         log=lambda *_: None)
    for split in ('val', 'test'):
        assert ((d / f'annotations/instances_{split}.json').read_bytes() ==
                (tmp_path / f'a/annotations/instances_{split}.json').read_bytes())
    # a rerun with the same options keeps the files; another option rewrites them
    stamp = (tmp_path / 'a/images/train/000000.png').stat().st_mtime_ns
    write_canvas_dataset(src, str(tmp_path / 'a'), opts, log=lambda *_: None)
    assert (tmp_path / 'a/images/train/000000.png').stat().st_mtime_ns == stamp
    assert not canvas_dataset_ready(str(tmp_path / 'a'), CanvasOptions(train_num=5))
    # a dataset of the old format (val canvases from the test file, no test split) is not ready
    meta = json.loads((tmp_path / 'a/meta.json').read_text())
    (tmp_path / 'a/meta.json').write_text(json.dumps(dict(meta, format=1)))
    assert not canvas_dataset_ready(str(tmp_path / 'a'))
    # nor one missing a test canvas
    (tmp_path / 'b/images/test/000000.png').unlink()
    assert not canvas_dataset_ready(str(tmp_path / 'b'))


def test_mmdet_and_mmseg_read_it_with_their_own_datasets(canvases):
    pytest.importorskip('mmdet')
    pytest.importorskip('mmseg')
    from mmdet.datasets import CocoDataset
    from mmseg.datasets import BaseSegDataset

    from mmrm.datasets import FASHION_MNIST_CLASSES, SEG_CLASSES
    root = str(canvases['root'])
    det = CocoDataset(data_root=root, ann_file='annotations/instances_val.json',
                      data_prefix=dict(img='images/val/'), metainfo=dict(
                          classes=FASHION_MNIST_CLASSES), test_mode=True, pipeline=[])
    assert len(det) == 6
    info = det[0]
    assert info['img_path'].endswith('images/val/000000.png')
    assert all(0 <= i['bbox_label'] < 10 and isinstance(i['mask'], dict)
               for i in info['instances'])
    seg = BaseSegDataset(data_root=root, data_prefix=dict(img_path='images/val',
                                                          seg_map_path='seg_maps/val'),
                         img_suffix='.png', seg_map_suffix='.png',
                         metainfo=dict(classes=SEG_CLASSES), pipeline=[])
    assert len(seg) == 6 and seg[0]['seg_map_path'].endswith('seg_maps/val/000000.png')
    test = CocoDataset(data_root=root, ann_file='annotations/instances_test.json',
                       data_prefix=dict(img='images/test/'), metainfo=dict(
                           classes=FASHION_MNIST_CLASSES), test_mode=True, pipeline=[])
    assert len(test) == 6 and test[0]['img_path'].endswith('images/test/000000.png')


def test_errors(tmp_path):
    with pytest.raises(FashionMNISTMissing, match='run `make data`'):
        load_fashion_mnist(str(tmp_path), 'train')
    with pytest.raises(ValueError, match='test_num must be >= 1'):
        CanvasOptions(test_num=0).check()
    with pytest.raises(ValueError, match='min_items must be in'):
        CanvasOptions(min_items=3, max_items=2).check()
    with pytest.raises(ValueError, match=r'28 \* max_scale <= size'):
        CanvasOptions(size=32, max_scale=1.5).check()
    proc = subprocess.run([sys.executable, TOOL, '--src', str(tmp_path / 'none'), '--out',
                           str(tmp_path / 'out')], capture_output=True, text=True,
                          env=tool_env())
    assert proc.returncode != 0 and 'run `make data`' in proc.stderr


def test_tool_writes_the_dataset(tmp_path):
    src = write_fashion_mnist(tmp_path / 'fm', n_train=20, n_test=10)
    out = tmp_path / 'out'
    proc = subprocess.run([sys.executable, TOOL, '--src', src, '--out', str(out),
                           '--train-num', '3', '--val-num', '2', '--size', '48', '--seed', '5'],
                          capture_output=True, text=True, env=tool_env())
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((out / 'meta.json').read_text())
    assert meta['counts'] == dict(train=3, val=2, test=2) and meta['options']['seed'] == 5
    assert canvas_dataset_ready(str(out))
    # --test-num through the tool's main() in this process (the command line ran above)
    load_tool(TOOL).main(['--src', src, '--out', str(tmp_path / 'o2'), '--train-num', '3',
                          '--val-num', '2', '--test-num', '4', '--size', '48'])
    meta = json.loads((tmp_path / 'o2' / 'meta.json').read_text())
    assert meta['counts'] == dict(train=3, val=2, test=4)
    assert len(list((tmp_path / 'o2' / 'seg_maps' / 'test').iterdir())) == 4
