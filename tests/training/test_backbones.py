"""The backbones: pretrained weights from a local file (the way to pretrained features on a machine without
network), the head's dropout rate read from a model, preprocessing fitted where it needs no labels."""
import numpy as np
import pytest

from labelnext.training import backbones


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """A MobileNetV3Small without its top, saved as Keras saves the file it fetches for 'imagenet'."""
    keras = backbones.load_keras()
    keras.utils.set_random_seed(7)
    base = keras.applications.MobileNetV3Small(input_shape=(32, 32, 3), include_top=False, weights=None,
                                               pooling="avg", include_preprocessing=True)
    path = tmp_path_factory.mktemp("w") / "no_top.weights.h5"
    base.save_weights(path)
    return path, base.get_weights()


def test_a_local_weights_file_initialises_the_backbone(weights_file):
    path, saved = weights_file
    model = backbones.build_model((32, 32, 3), 4, arch="mobilenetv3", weights=str(path))
    # build_model's layers after the backbone (embedding, dropout, head) come last.
    got = model.get_weights()[:len(saved)]
    assert all(np.array_equal(a, b) for a, b in zip(got, saved))
    fresh = backbones.build_model((32, 32, 3), 4, arch="mobilenetv3", weights=None)
    assert not all(np.array_equal(a, b) for a, b in zip(fresh.get_weights()[:len(saved)], saved))


@pytest.mark.parametrize("weights, arch, match", [
    ("missing.h5", "mobilenetv3", "weights must be none, 'imagenet' or an existing weights file, got 'missing.h5'"),
    ("FILE", "small_cnn", "a weights file is for arch 'mobilenetv3'"),
])
def test_bad_weights_are_refused_in_one_line(weights_file, weights, arch, match):
    weights = str(weights_file[0]) if weights == "FILE" else weights
    with pytest.raises(ValueError, match=match):
        backbones.build_model((32, 32, 3), 4, arch=arch, weights=weights)


def test_a_file_of_another_model_is_a_clear_error(tmp_path):
    keras = backbones.load_keras()
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    path = tmp_path / "other.weights.h5"
    other.save_weights(path)
    with pytest.raises(ValueError, match="could not load the weights file .* into MobileNetV3Small without its top"):
        backbones.build_model((32, 32, 3), 4, arch="mobilenetv3", weights=str(path))


def test_the_loop_trains_every_round_from_the_weights_file(weights_file, tmp_path):
    from labelnext.loop.project import LabelingProject
    from helpers import photos

    photos(tmp_path / "photos", per_class=6)
    path = weights_file[0]
    with pytest.raises(ValueError, match="a weights file is for arch 'mobilenetv3'"):
        LabelingProject.create(tmp_path / "p", tmp_path / "photos", initial=6, weights=path)  # small_cnn
    assert not (tmp_path / "p").exists()
    with LabelingProject.create(tmp_path / "p", tmp_path / "photos", initial=6, arch="mobilenetv3", weights=path,
                                steps=3) as proj:
        assert proj.config["weights"] == str(path.resolve())
        assert proj.run_round(3)["n_labeled"] == 6


def test_head_dropout_rate_reads_the_layer_in_front_of_the_softmax():
    keras = backbones.load_keras()
    assert backbones.head_dropout_rate(backbones.build_model((8, 8, 3), 3, arch="small_cnn", dropout=0.0)) == 0.0
    inputs = keras.Input(shape=(4,))
    emb = keras.layers.Identity(name="embedding")(inputs)
    direct = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="predictions")(emb))
    assert backbones.head_dropout_rate(direct) == 0.0
    hidden = keras.layers.Dense(4)(keras.layers.Dropout(0.5)(emb))  # not a Dropout right in front of the head
    other = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="predictions")(hidden))
    assert backbones.head_dropout_rate(other) is None
