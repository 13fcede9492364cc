"""argparse helpers of the tools."""
import argparse

import pytest

from mmrm.utils import shape_type


def test_shape_type_reads_and_refuses_shapes():
    chw = shape_type('CxHxW')
    assert chw('3x224x160') == (3, 224, 160)
    for bad in ('3x224', '3x224x0', 'axbxc', '64x3x32x32'):
        with pytest.raises(argparse.ArgumentTypeError, match='shape must be CxHxW'):
            chw(bad)
    assert shape_type('NxCxHxW')('64x3x32x32') == (64, 3, 32, 32)
