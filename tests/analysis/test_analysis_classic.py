"""The classic networks: receptive field, jump and effective padding of the last convolutional
feature map, parameters and MACs at 224x224, checked three ways:

1. the analysis of plain-torch.nn builds with torchvision's layouts (tests/analysis/analysis_classic_nets.py);
2. an independent hand chain of (kernel, stride, padding) along the longest path, run through the
   textbook recursion written out here (r += (k - 1)*j; j *= s; padding += p*j);
3. the published figures. Conventions: sizes and jumps do not depend on the padding convention;
   effective paddings do. PyTorch pads (1, 1) for a 3x3 at stride 2 where TensorFlow's 'SAME' pads
   (0, 1) on even inputs, and the TF-slim ResNets put the stride in the last unit of a stage, so
   published TF tables (Araujo et al., Distill 2019) differ from the PyTorch layout there.

The registry's models (convolab.models, written in parallel) are run against the same numbers;
each is skipped only while its name is not registered.
"""

from __future__ import annotations

from tests.analysis import analysis_classic_nets as C
import pytest
import torch

from convolab.analysis import summary
from convolab.models import create_model, list_models


def build(fn, **kw):
    """Build on the meta device: no weight initialisation cost (the analysis needs none)."""
    with torch.device("meta"):
        return fn(**kw)


def chain(layers):
    """(size, jump, effective padding) after (kernel, stride, padding_before) windows: the textbook way."""
    r, j, p = 1, 1, 0
    for k, s, pad in layers:
        r += (k - 1) * j
        p += pad * j
        j *= s
    return r, j, p


RESNET50_MAIN_PATH = (
    [(7, 2, 3), (3, 2, 1)]
    + [(3, 1, 1)] * 3
    + [(3, 2, 1)] + [(3, 1, 1)] * 3
    + [(3, 2, 1)] + [(3, 1, 1)] * 5
    + [(3, 2, 1)] + [(3, 1, 1)] * 2
)
VGG16 = ([(3, 1, 1)] * 2 + [(2, 2, 0)]) * 2 + ([(3, 1, 1)] * 3 + [(2, 2, 0)]) * 3
ALEXNET_CONV5 = [(11, 4, 2), (3, 2, 0), (5, 1, 2), (3, 2, 0), (3, 1, 1), (3, 1, 1), (3, 1, 1)]
MOBILENET_V1 = [(3, 2, 1)] + [(3, s, 1) for s in (1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1)]
MOBILENET_V2 = [(3, 2, 1)] + [(3, s, 1) for s in (1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1)]
# longest branch of each block, per spatial dim (a 1x7 then 7x1 pair is one 7 per dim)
INCEPTION_V3 = (
    [(3, 2, 0), (3, 1, 0), (3, 1, 1), (3, 2, 0), (1, 1, 0), (3, 1, 0), (3, 2, 0)]
    + [(3, 1, 1), (3, 1, 1)] * 3            # Mixed_5b-d: 3x3dbl
    + [(3, 1, 1), (3, 2, 0)]                # Mixed_6a
    + [(7, 1, 3), (7, 1, 3)] * 4            # Mixed_6b-e: 7x7dbl
    + [(7, 1, 3), (3, 2, 0)]                # Mixed_7a: 7x7x3
    + [(3, 1, 1), (3, 1, 1)] * 2            # Mixed_7b-c: 3x3dbl then 1x3 | 3x1
)
GOOGLENET = (
    [(7, 2, 3), (3, 2, 0), (1, 1, 0), (3, 1, 1), (3, 2, 0)] + [(3, 1, 1)] * 2 + [(3, 2, 0)]
    + [(3, 1, 1)] * 5 + [(2, 2, 0)] + [(3, 1, 1)] * 2
)
SHUFFLENET_V2 = [(3, 2, 1), (3, 2, 1)] + (
    [(3, 2, 1)] + [(3, 1, 1)] * 3 + [(3, 2, 1)] + [(3, 1, 1)] * 7 + [(3, 2, 1)] + [(3, 1, 1)] * 3
)


def last_map(s):
    """The last top-level row with a spatial output wider than 1x1: the last conv feature map."""
    rows = [r for r in s.rows if r.depth == 1 and len(r.output_shapes[0]) == 4
            and min(r.output_shapes[0][2:]) > 1]
    return rows[-1]


def triple_of(row):
    (h, w) = row.fields
    assert h == w
    return (h.size, h.jump, h.effective_padding)


# (builder, expected (size, jump, effective padding) of the last map with PyTorch padding, hand chain)
FIXTURES = {
    "resnet50": (C.resnet50, (427, 32, 213), RESNET50_MAIN_PATH),
    "vgg16": (C.vgg16, (212, 32, 90), VGG16),  # Araujo et al.: vgg_16 212, 32, 90 (same layout)
    "alexnet": (C.alexnet, (195, 32, 66), ALEXNET_CONV5 + [(3, 2, 0)]),  # TF-slim alexnet_v2: 195, 32, 64
    "mobilenet_v1": (C.mobilenet_v1, (315, 32, 157), MOBILENET_V1),
    "mobilenet_v2": (C.mobilenet_v2, (491, 32, 245), MOBILENET_V2),
    # same layout as TF-slim (valid stem and reductions): Araujo et al. give 1311, 32, 618
    "inception_v3": (C.inception_v3, (1311, 32, 618), INCEPTION_V3),
    "googlenet": (C.googlenet, (379, 32, 167), GOOGLENET),
    "shufflenet_v2_x1_0": (C.shufflenet_v2_x1_0, (527, 32, 263), SHUFFLENET_V2),
}


def input_size(name):
    return (1, 3, 299, 299) if name == "inception_v3" else (1, 3, 224, 224)

# Published model-zoo figures at 224x224: GMACs of conv + linear, parameters.
ZOO = {
    "resnet50": (4.09, 25_557_032),
    "resnet18": (1.81, 11_689_512),
    "vgg16": (15.47, 138_357_544),
    "alexnet": (0.71, 61_100_840),
    "mobilenet_v1": (0.57, 4_231_976),
    "mobilenet_v2": (0.30, 3_504_872),
    "googlenet": (1.50, None),
    "inception_v3": (5.71, None),  # at 299x299
    "shufflenet_v2_x1_0": (0.14, 2_278_604),
}


@pytest.fixture(scope="module")
def fixture_summaries():
    return {name: summary(build(fn), input_size(name), depth=None) for name, (fn, _, _) in FIXTURES.items()}


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_last_feature_map_field(name, fixture_summaries):
    _, expected, hand = FIXTURES[name]
    assert chain(hand) == expected  # the independent hand chain agrees with the stated figure
    row = last_map(fixture_summaries[name])
    assert triple_of(row) == expected
    assert fixture_summaries[name].warnings == () and fixture_summaries[name].not_analysed == ()


def test_alexnet_conv5_before_pool5(fixture_summaries):
    s = fixture_summaries["alexnet"]
    assert chain(ALEXNET_CONV5) == (163, 16, 66)
    assert triple_of(s.row("features.10")) == (163, 16, 66)


def test_vgg16_pool5_fc_units_see_the_union(fixture_summaries):
    s = fixture_summaries["vgg16"]
    # fc6 reads all 7x7 pool5 units: 212 + 6*32 pixels
    assert s.row("classifier.0").fields[0].size == 212 + 6 * 32


def test_tensorflow_same_padding_shifts_the_effective_padding():
    # TF 'SAME' pads (0, 1) at stride 2 on even inputs: the effective padding drops by the jump
    # before each stride-2 layer (1 + 2 + 4 + 8 + 16 = 31). Araujo et al.: mobilenet_v1 315, 32, 126.
    s = summary(build(C.mobilenet_v1, padding="same"), (1, 3, 224, 224), depth=1)
    assert triple_of(last_map(s)) == (315, 32, 126)
    s = summary(build(C.mobilenet_v2, padding="same"), (1, 3, 224, 224), depth=1)
    assert triple_of(last_map(s)) == (491, 32, 214)


FIXTURE_PARAMS = {"googlenet": 6_624_904, "inception_v3": 27_161_264}  # no aux / with aux, as torchvision


@pytest.mark.parametrize("name", sorted(ZOO))
def test_fixture_macs_and_params_equal_the_zoo(name):
    gmacs, params = ZOO[name]
    s = summary(build(getattr(C, name)), input_size(name), depth=0)
    assert round(s.macs / 1e9, 2) == gmacs
    assert s.params == (params or FIXTURE_PARAMS[name])


def _registered(name):
    if name not in list_models():
        pytest.skip(f"{name} is not registered yet (convolab.models is written in parallel)")
    with torch.device("meta"):
        return create_model(name)


REGISTRY_FIELDS = {
    "resnet50": (427, 32, 213),
    "resnet18": (435, 32, 217),  # test_resnet18_chain
    "vgg16": (212, 32, 90),
    "alexnet": (195, 32, 66),
    "mobilenet_v1": (315, 32, 157),
    "mobilenet_v2": (491, 32, 245),
    "inception_v3": (1311, 32, 618),
    "googlenet": (379, 32, 167),
    "shufflenet_v2_x1_0": (527, 32, 263),
}


def test_resnet18_chain():
    path = [(7, 2, 3), (3, 2, 1)] + [(3, 1, 1)] * 4 + ([(3, 2, 1)] + [(3, 1, 1)] * 3) * 3
    assert chain(path) == REGISTRY_FIELDS["resnet18"]
    s = summary(build(C.resnet18), (1, 3, 224, 224), depth=1)
    assert triple_of(last_map(s)) == REGISTRY_FIELDS["resnet18"]


@pytest.mark.parametrize("name", sorted(REGISTRY_FIELDS))
def test_registry_last_feature_map(name):
    s = summary(_registered(name), input_size(name), depth=1)
    assert triple_of(last_map(s)) == REGISTRY_FIELDS[name]
    assert s.not_analysed == () and s.warnings == ()


@pytest.mark.parametrize("name", sorted(ZOO))
def test_registry_macs_and_params(name):
    gmacs, params = ZOO[name]
    s = summary(_registered(name), input_size(name), depth=0)
    assert round(s.macs / 1e9, 2) == gmacs
    if params is not None:
        assert s.params == params


INPUTS = {"mnist_cnn": (1, 1, 28, 28), "mnist_spp": (1, 1, 28, 28), "inception_v3": (1, 3, 299, 299)}


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_is_analysed_whole(name):
    # registry-driven: every model the registry gains is analysed without unknown ops or misalignment
    with torch.device("meta"):
        model = create_model(name)
    shape = INPUTS.get(name, (1, 3, 256, 256) if name.startswith("hourglass") else (1, 3, 224, 224))
    s = summary(model, shape, depth=1)
    assert s.not_analysed == () and s.warnings == ()
    assert s.params == sum(p.numel() for p in model.parameters())
    assert all(r.fields is not None or r.problem is None for r in s.rows)
