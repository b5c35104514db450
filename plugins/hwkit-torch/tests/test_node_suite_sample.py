"""A fixed sample of ONNX backend node test cases that the converter passes (the full run is
``scripts/conformance_fx.py``; see docs/conformance.md)."""

from __future__ import annotations

import pytest

from hwkit_torch.testing import load_cases, run_case

SAMPLE = [
    # element-wise / math
    "test_add_bcast", "test_div_int8", "test_mod_mixed_sign_int32", "test_mod_mixed_sign_float64",
    "test_pow_types_int32_float32", "test_round", "test_bitshift_right_uint16", "test_clip_default_int8_min",
    "test_where_long_example", "test_max_uint64", "test_mean_example", "test_erf", "test_gelu_tanh_2",
    "test_isinf_negative",
    # casts / dtypes
    "test_cast_FLOAT_to_BFLOAT16", "test_cast_FLOAT_to_FLOAT8E4M3FN", "test_castlike_FLOAT16_to_FLOAT",
    # shape
    "test_reshape_reordered_all_dims", "test_reshape_allowzero_reordered", "test_flatten_negative_axis1",
    "test_slice_neg_steps", "test_split_variable_parts_1d_opset18", "test_unsqueeze_unsorted_axes",
    "test_expand_dim_changed", "test_tile", "test_reflect_pad", "test_center_crop_pad_crop_and_pad",
    "test_depthtospace_crd_mode_example", "test_shape_start_negative_1", "test_tril_neg",
    # reductions / indexing
    "test_reduce_sum_keepdims_random", "test_reduce_log_sum_exp_empty_set", "test_argmax_negative_axis_keepdims_random_select_last_index",
    "test_top_k_smallest", "test_cumsum_1d_reverse_exclusive", "test_gather_negative_indices",
    "test_gathernd_example_int32_batch_dim1", "test_scatter_elements_with_reduction_max",
    "test_scatternd_multiply", "test_onehot_negative_indices", "test_unique_sorted_with_axis",
    "test_nonzero_example", "test_einsum_batch_matmul",
    # nn
    "test_conv_with_autopad_same", "test_convtranspose_output_shape", "test_maxpool_2d_ceil",
    "test_maxpool_with_argmax_2d_precomputed_pads", "test_averagepool_2d_pads_count_include_pad",
    "test_lppool_2d_default", "test_batchnorm_example_training_mode", "test_layer_normalization_4d_axis1",
    "test_rms_normalization_3d_axis_negative_1_epsilon", "test_group_normalization_example",
    "test_instancenorm_example", "test_gemm_all_attributes", "test_softmax_axis_0", "test_logsoftmax_axis_0",
    "test_resize_upsample_scales_cubic_align_corners", "test_resize_downsample_sizes_linear_antialias",
    "test_gridsample_bicubic_align_corners_1_additional_1", "test_sce_mean_weight_ii_3d", "test_nllloss_NCd1d2_with_weight_reduction_mean",
    # attention / transformer
    "test_attention_4d_gqa_causal", "test_attention_3d_with_past_and_present_qk_matmul", "test_attention_4d_softcap",
    "test_rotary_embedding_interleaved", "test_lstm_with_peepholes", "test_gru_seq_length",
    # control flow / sequences / quantisation
    "test_if", "test_loop11", "test_scan9_sum", "test_sequence_insert_at_back", "test_split_to_sequence_1",
    "test_quantizelinear_blocked_asymmetric", "test_dequantizelinear_axis", "test_qlinearmatmul_2D_uint8_float32",
]


@pytest.fixture(scope="module")
def cases() -> dict:
    return load_cases()


def test_sample_names_exist(cases: dict) -> None:
    missing = [n for n in SAMPLE if n not in cases]
    assert not missing


@pytest.mark.parametrize("name", SAMPLE)
def test_node_case(cases: dict, name: str) -> None:
    got, status, message = run_case(name)
    assert (got, status) == (name, "pass"), message
