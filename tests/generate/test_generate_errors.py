"""docs/errors.md rows 75-84: bad input to ``--generate`` is one line and exit 2, before anything runs."""

from __future__ import annotations

import onnx
import pytest

from hwkit.testing.generate_conformance import tiny_decoder
from tests.helpers import cli


def _saved(tmp_path, proto, name="tiny.onnx"):
    path = tmp_path / name
    onnx.save(proto, path)
    return str(path)


def _fails(capsys, argv, *expected):
    code, _, err = cli(capsys, *argv)
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("hwkit: error:"), err
    assert "Traceback" not in err[0]
    for text in expected:
        assert text in err[0], err
    return err[0]


def test_row_75_a_prompt_longer_than_the_position_table(tmp_path, capsys):
    model = _saved(tmp_path, tiny_decoder(positions=32))
    _fails(capsys, ["bench", model, "--generate", "--prompt", "40", "--new", "2", "-b", "onnxruntime"],
           "position table has 32", "--prompt")
    _fails(capsys, ["check", model, "--generate", "--prompt", "30", "--new", "8", "-b", "onnxruntime"],
           "needs 37 positions")


def test_row_76_new_zero(tmp_path, capsys):
    _fails(capsys, ["bench", _saved(tmp_path, tiny_decoder()), "--generate", "--new", "0"], "argument --new: must be a whole number >= 1; got '0'")


def test_row_77_generate_on_a_model_that_does_not_generate(capsys):
    _fails(capsys, ["bench", "mlp", "--generate", "-b", "onnxruntime"],
           "'mlp' is not a generative decoder", "lacks input_ids", "past_key_values")


def test_row_78_past_and_present_counts_differ(tmp_path, capsys):
    _fails(capsys, ["check", _saved(tmp_path, tiny_decoder(layers=2, presents=1)), "--generate"],
           "4 past_key_values inputs but 2 present outputs", "present.1.key")


def test_row_79_an_input_outside_the_convention(tmp_path, capsys):
    _fails(capsys, ["bench", _saved(tmp_path, tiny_decoder(extra_input="token_type_ids")), "--generate"],
           "outside the generation convention: token_type_ids")


def test_row_80_a_cache_with_symbolic_heads(tmp_path, capsys):
    _fails(capsys, ["bench", _saved(tmp_path, tiny_decoder(heads="heads")), "--generate"],
           "fixed kv_heads and head_dim")


def test_row_81_single_pass_flags_with_generate(tmp_path, capsys):
    _fails(capsys, ["bench", _saved(tmp_path, tiny_decoder()), "--generate", "--min-time", "5", "--csv", "x.csv"],
           "--min-time, --csv do not apply with --generate")


def test_row_82_a_precision_other_than_fp32_with_generate(tmp_path, capsys):
    _fails(capsys, ["bench", _saved(tmp_path, tiny_decoder()), "--generate", "--precision", "fp16"],
           "--generate runs fp32 only")


@pytest.mark.parametrize("flag, value", [("--prompt", "0"), ("--prompt", "8,x"), ("--batch", "0")])
def test_row_83_a_bad_prompt_or_batch_list(tmp_path, capsys, flag, value):
    _fails(capsys, ["check", _saved(tmp_path, tiny_decoder()), "--generate", flag, value],
           f"{flag} takes whole sizes >= 1")


@pytest.mark.parametrize("value", ["0", "1,x", ","])
def test_row_83_a_bad_batch_list_without_generate(capsys, value):
    """The single-pass bench parses its --batch list with the same rule (one parser for both)."""
    err = _fails(capsys, ["bench", "mlp", "--batch", value, "-b", "onnxruntime"], "--batch takes whole sizes >= 1")
    assert err.endswith(f"e.g. --batch 1,8,32; got '{value}'")


def test_row_84_logits_without_a_sequence_axis(tmp_path, capsys):
    proto = tiny_decoder()
    logits = proto.graph.output[0]
    del logits.type.tensor_type.shape.dim[1]  # [batch, vocab]: the last position only
    proto.graph.node[-1].op_type = "ReduceMean"
    proto.graph.node[-1].attribute.extend([onnx.helper.make_attribute("axes", [1]),
                                           onnx.helper.make_attribute("keepdims", 0)])
    _fails(capsys, ["bench", _saved(tmp_path, proto), "--generate"], "must be [batch, sequence, vocab]")
