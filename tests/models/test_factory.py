"""The factory's tensor-type helpers: the channel count of every item a tensor-type string may name, and the order
of the flow network's inputs."""
import pytest

from models.factory import (flow_input_items, flow_network_input_nc, item_dim, tensor_type_dim,
                            tensor_type_items)


def test_tensor_type_items_split_at_plus():
    assert tensor_type_items('img_1+joint_2') == ['img_1', 'joint_2']
    assert tensor_type_items('img_out_G+img_warp+vis_out+flow_out') == ['img_out_G', 'img_warp', 'vis_out',
                                                                         'flow_out']
    assert tensor_type_items('joint') == ['joint']
    for empty in ('', '+'):
        with pytest.raises(ValueError, match='empty tensor-type string'):
            tensor_type_items(empty)


@pytest.mark.parametrize('item, dim', [
    ('img', 3), ('img_1', 3), ('img_2', 3), ('img_out', 3), ('img_out_G', 3), ('img_warp', 3),
    ('joint', 18), ('joint_1', 18), ('joint_2', 18), ('seg', 7), ('seg_1', 7), ('seg_2', 7),
    ('flow', 2), ('flow_out', 2), ('flow_tar', 2), ('vis', 1), ('vis_2', 1), ('vis_out', 1), ('vis_tar', 1),
    ('vismap_out', 3), ('vismap_tar', 3), ('pix_mask', 1),
])
def test_item_dim(item, dim):
    assert item_dim(item, joint_nc=18, seg_nc=7) == dim


def test_joint_and_seg_dims_follow_the_arguments():
    assert [item_dim(i, joint_nc=14, seg_nc=20) for i in ('joint_1', 'joint', 'seg_2', 'seg', 'img_1')] == [
        14, 14, 20, 20, 3]


@pytest.mark.parametrize('item', ['depth_1', 'img_3', 'joint_c_1', 'Img_1', 'img_'])
def test_unknown_item_raises_listing_the_valid_ones(item):
    with pytest.raises(ValueError, match=f"unknown tensor-type item '{item}'; valid items: .*'img_1'.*'pix_mask'"):
        item_dim(item, joint_nc=18, seg_nc=7)


def test_tensor_type_dim_of_the_default_inputs():
    # flow network, unet generator, pixel-warping network, discriminator (real and fake pairs)
    assert tensor_type_dim('joint_1+joint_2', 18, 7) == 36
    assert tensor_type_dim('img_1+joint_2', 18, 7) == 21
    assert tensor_type_dim('img_out_G+img_warp+vis_out+flow_out', 18, 7) == 9
    assert tensor_type_dim('img_1+img_2+joint_2', 18, 7) == 24
    assert tensor_type_dim('img_1+img_out+joint_2', 18, 7) == 24
    assert tensor_type_dim('seg_1+joint_2', 14, 20) == 34
    with pytest.raises(ValueError, match="unknown tensor-type item 'depth_2'"):
        tensor_type_dim('img_1+depth_2', 18, 7)


def test_flow_input_items_sorted_per_side_then_side_1_before_side_2():
    assert flow_input_items('joint', 'joint') == ['joint_1', 'joint_2']
    # Each side's items alphabetically, whatever order the option lists them in.
    assert flow_input_items('seg+joint+img', 'joint+img') == ['img_1', 'joint_1', 'seg_1', 'img_2', 'joint_2']
    assert flow_input_items('joint+img', 'seg') == ['img_1', 'joint_1', 'seg_2']
    assert flow_network_input_nc('joint', 'joint', 18, 7) == 36
    assert flow_network_input_nc('seg+joint+img', 'joint', 18, 7) == 3 + 18 + 7 + 18


@pytest.mark.parametrize('type1, type2, message', [
    ('flow', 'joint', r"--input_type1 items \['flow'\] cannot be network inputs; valid: \['img', 'joint', 'seg'\]"),
    ('joint', 'img_2+vis', r"--input_type2 items \['img_2', 'vis'\] cannot be network inputs"),
    ('', 'joint', 'empty tensor-type string'),
])
def test_flow_input_items_errors_name_the_option(type1, type2, message):
    with pytest.raises(ValueError, match=message):
        flow_input_items(type1, type2)
