"""The one model fingerprint: the same model saved and loaded keeps it, any change to what the model
computes changes it, and the analyzer's cache and streamed inference record the same one."""
import numpy as np
import pytest

from labelnext.analysis.model_run import KerasModel
from labelnext.io.files import load_json
from labelnext.scale.inference import STATE_FILE, stream_predict
from labelnext.training.backbones import build_model, load_keras
from labelnext.training.fingerprint import model_fingerprint

ROWS = np.random.RandomState(0).rand(20, 6).astype(np.float32)
TEXTS = np.array(["a good film", "bad film", "the worst", "great story"] * 5, dtype=object)


def saved_and_loaded(model, path):
    model.save(path)
    return load_keras().models.load_model(path, compile=False)


@pytest.mark.parametrize("arch, shape, adapt", [
    ("small_cnn", (8, 8, 3), None), ("mobilenetv3", (32, 32, 3), None), ("mlp", (6,), ROWS), ("linear", (6,), ROWS),
    ("textmlp", (1,), TEXTS), ("lstm", (1,), TEXTS),
])
def test_the_same_weights_saved_twice_keep_the_fingerprint(tmp_path, arch, shape, adapt):
    load_keras().utils.set_random_seed(0)
    model = build_model(shape, 3, arch=arch, adapt=adapt)
    first = saved_and_loaded(model, tmp_path / "a.keras")
    again = saved_and_loaded(first, tmp_path / "b.keras")  # a loaded model saved once more
    assert model_fingerprint(model) == model_fingerprint(first) == model_fingerprint(again)


def test_other_weights_give_another_fingerprint():
    model = build_model((8, 8, 3), 3, arch="small_cnn")
    before = model_fingerprint(model)
    weights = model.get_weights()
    weights[-1] = weights[-1] + 1e-6  # one bias of the head moved
    model.set_weights(weights)
    assert model_fingerprint(model) != before


def test_same_weights_with_another_vocabulary_give_another_fingerprint():
    # Same seed and vocabulary size: equal weights, different words, different predictions.
    models = []
    for words in (["a b c"] * 4, ["x y z"] * 4):
        load_keras().utils.set_random_seed(0)
        models.append(build_model((1,), 2, arch="textmlp", adapt=np.array(words, dtype=object)))
    assert all(np.array_equal(a, b) for a, b in zip(models[0].get_weights(), models[1].get_weights()))
    assert model_fingerprint(models[0]) != model_fingerprint(models[1])


def test_same_weights_in_another_layer_setting_give_another_fingerprint():
    keras = load_keras()

    def head(activation):
        inputs = keras.Input(shape=(4,))
        return keras.Model(inputs, keras.layers.Dense(3, activation=activation, name="predictions")(inputs))

    relu, linear = head("relu"), head("linear")
    linear.set_weights(relu.get_weights())
    assert model_fingerprint(relu) != model_fingerprint(linear)


def test_the_analyzer_and_streamed_inference_record_the_same_fingerprint(tmp_path):
    load_keras().utils.set_random_seed(0)
    model = build_model((6,), 3, arch="mlp", adapt=ROWS)
    loaded = saved_and_loaded(model, tmp_path / "best_model.keras")
    stream_predict(tmp_path / "best_model.keras", ROWS, tmp_path / "out", progress=False)
    recorded = load_json(tmp_path / "out" / STATE_FILE)["fingerprint"]["model"]
    assert KerasModel(loaded, tmp_path / "best_model.keras").fingerprint() == recorded == model_fingerprint(model)
