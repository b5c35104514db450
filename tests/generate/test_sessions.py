"""Every backend's native step session generates exactly what the generic numpy path does."""

from __future__ import annotations

import numpy as np
import pytest

from hwkit.generate import convention
from hwkit.generate.loop import greedy
from hwkit.generate.session import NumpySession, open_session
from hwkit.model import Model
from hwkit.testing.backends import fake_backends
from hwkit.testing.generate_conformance import check_step_session, tiny_decoder


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino", "cpu"])
def test_a_native_session_matches_the_generic_path(backend):
    check_step_session(backend)


def test_the_decoders_native_session_matches_on_onnxruntime():
    check_step_session("onnxruntime", Model.builtin("decoder"), prompt=5, new=3, batch=2)


def test_the_generic_session_feeds_each_present_back_as_its_past():
    model = Model.load(tiny_decoder())
    conv = convention.read(model)
    import hwkit

    with hwkit.compile(model, "onnxruntime") as exe:
        session, where = open_session(exe, conv.cache, conv.empty_cache(1), ["logits"], native=False)
        assert where == "numpy" and isinstance(session, NumpySession)
        prompt = np.array([[3, 5, 7]])
        generation = greedy(session, conv, prompt, 4)
        assert generation.tokens.shape == (1, 4) and len(generation.step_s) == 3
        # 2 layers x key/value x 1 head x (3 + 3 fed tokens) x 4 floats: the last token is never fed
        assert session.state_bytes() == 4 * 1 * 6 * 4 * 4
        # One full pass over the whole sequence gives the same last logits as the cached steps.
        whole = np.concatenate([prompt, generation.tokens[:, :-1]], axis=1)
        feeds = {**conv.feeds(whole, 0), **conv.empty_cache(1)}
        assert np.argmax(exe.execute(feeds)["logits"][:, -1], -1).tolist() == generation.tokens[:, -1].tolist()
