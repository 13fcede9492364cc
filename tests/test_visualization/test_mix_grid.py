"""Where the pastes of earlier RM steps sit in the last image (:func:`nested_boxes`)."""
from mmrm.visualization.mix_grid import nested_boxes


def test_nested_boxes_by_hand():
    # step 2 pasted step 1 into the right half; step 3 pasted step 2 into the top-left quarter
    boxes = [None, (8, 0, 16, 16), (0, 0, 8, 8)]
    assert nested_boxes(boxes, (16, 16)) == [(0, 0, 8, 8), (4., 0., 8., 8.)]
    assert nested_boxes([(0, 0, 0, 0), (2, 2, 6, 6)], (16, 16)) == [(2, 2, 6, 6)]
