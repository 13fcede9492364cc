"""Building blocks of the RM components: the feature map of the RoI branch and its pooling."""
from .device import to_device_async
from .feature_taps import (FeatureTap, PoolingInputTap, StageOutputTap, TokenTap,
                           build_feature_tap)
from .roi_weights import roi_align_1x1_weights
from .spatial_map import LAYOUTS, SpatialMap, infer_grid
from .inputs import check_batch, check_channels, input_channels
from .targets import (check_labels, check_num_classes, check_targets, format_targets,
                      score_sum_tolerance)

__all__ = [
    'FeatureTap', 'PoolingInputTap', 'StageOutputTap', 'TokenTap', 'build_feature_tap',
    'roi_align_1x1_weights', 'LAYOUTS', 'SpatialMap', 'infer_grid', 'to_device_async',
    'check_labels', 'check_num_classes', 'check_targets', 'format_targets',
    'score_sum_tolerance', 'check_batch', 'check_channels', 'input_channels'
]
