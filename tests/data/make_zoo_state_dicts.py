"""Write tests/data/<model>_state_dict.json: the model zoo's state_dict (key, shape) lists.

Written from the published layouts (torchvision/models/{resnet,vgg,mobilenetv2,
shufflenetv2}.py) independently of convolab, so the compatibility test compares
against something convolab did not produce. Run ``python tests/data/make_zoo_state_dicts.py``.
"""

import json
import math
import pathlib

HERE = pathlib.Path(__file__).resolve().parent


def bn(prefix, c):
    return [
        (f"{prefix}.weight", [c]),
        (f"{prefix}.bias", [c]),
        (f"{prefix}.running_mean", [c]),
        (f"{prefix}.running_var", [c]),
        (f"{prefix}.num_batches_tracked", []),
    ]


def resnet50():
    keys = [("conv1.weight", [64, 3, 7, 7])] + bn("bn1", 64)
    inplanes = 64
    for i, (planes, blocks) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)], 1):
        for b in range(blocks):
            p = f"layer{i}.{b}"
            keys += [(f"{p}.conv1.weight", [planes, inplanes, 1, 1])] + bn(f"{p}.bn1", planes)
            keys += [(f"{p}.conv2.weight", [planes, planes, 3, 3])] + bn(f"{p}.bn2", planes)
            keys += [(f"{p}.conv3.weight", [planes * 4, planes, 1, 1])] + bn(f"{p}.bn3", planes * 4)
            if b == 0:
                keys += [(f"{p}.downsample.0.weight", [planes * 4, inplanes, 1, 1])] + bn(
                    f"{p}.downsample.1", planes * 4
                )
            inplanes = planes * 4
    keys += [("fc.weight", [1000, 2048]), ("fc.bias", [1000])]
    return keys


def vgg16():
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    keys, idx, cin = [], 0, 3
    for v in cfg:
        if v == "M":
            idx += 1
            continue
        keys += [(f"features.{idx}.weight", [v, cin, 3, 3]), (f"features.{idx}.bias", [v])]
        idx += 2  # conv, relu
        cin = v
    keys += [
        ("classifier.0.weight", [4096, 25088]),
        ("classifier.0.bias", [4096]),
        ("classifier.3.weight", [4096, 4096]),
        ("classifier.3.bias", [4096]),
        ("classifier.6.weight", [1000, 4096]),
        ("classifier.6.bias", [1000]),
    ]
    return keys


def mobilenet_v2():
    keys = [("features.0.0.weight", [32, 3, 3, 3])] + bn("features.0.1", 32)
    cin, idx = 32, 1
    for t, c, n, _stride in [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ]:
        for _ in range(n):
            hid, p, j = cin * t, f"features.{idx}.conv", 0
            if t != 1:
                keys += [(f"{p}.0.0.weight", [hid, cin, 1, 1])] + bn(f"{p}.0.1", hid)
                j = 1
            keys += [(f"{p}.{j}.0.weight", [hid, 1, 3, 3])] + bn(f"{p}.{j}.1", hid)
            keys += [(f"{p}.{j + 1}.weight", [c, hid, 1, 1])] + bn(f"{p}.{j + 2}", c)
            cin, idx = c, idx + 1
    keys += [(f"features.{idx}.0.weight", [1280, 320, 1, 1])] + bn(f"features.{idx}.1", 1280)
    keys += [("classifier.1.weight", [1000, 1280]), ("classifier.1.bias", [1000])]
    return keys


def shufflenet_v2_x1_0():
    keys = [("conv1.0.weight", [24, 3, 3, 3])] + bn("conv1.1", 24)
    cin = 24
    for st, (c, n) in enumerate([(116, 4), (232, 8), (464, 4)], 2):
        h = c // 2
        for u in range(n):
            p = f"stage{st}.{u}"
            if u == 0:
                keys += [(f"{p}.branch1.0.weight", [cin, 1, 3, 3])] + bn(f"{p}.branch1.1", cin)
                keys += [(f"{p}.branch1.2.weight", [h, cin, 1, 1])] + bn(f"{p}.branch1.3", h)
            keys += [(f"{p}.branch2.0.weight", [h, cin if u == 0 else h, 1, 1])] + bn(f"{p}.branch2.1", h)
            keys += [(f"{p}.branch2.3.weight", [h, 1, 3, 3])] + bn(f"{p}.branch2.4", h)
            keys += [(f"{p}.branch2.5.weight", [h, h, 1, 1])] + bn(f"{p}.branch2.6", h)
        cin = c
    keys += [("conv5.0.weight", [1024, 464, 1, 1])] + bn("conv5.1", 1024)
    keys += [("fc.weight", [1000, 1024]), ("fc.bias", [1000])]
    return keys


def main() -> None:
    for name, params in [
        ("resnet50", 25557032),
        ("vgg16", 138357544),
        ("mobilenet_v2", 3504872),
        ("shufflenet_v2_x1_0", 2278604),
    ]:
        keys = globals()[name]()
        count = sum(
            math.prod(s)
            for k, s in keys
            if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
        )
        if count != params:
            raise SystemExit(f"{name}: {count} parameters, published {params}")
        head = json.dumps({"model": name, "source": SOURCE.format(name), "num_params": params})[:-1]
        rows = ",\n".join("  " + json.dumps([k, s]) for k, s in keys)
        (HERE / f"{name}_state_dict.json").write_text(head + ', "state_dict": [\n' + rows + "\n]}\n")


SOURCE = "torchvision.models.{}(num_classes=1000).state_dict(): names and shapes, written from the published layout"
if __name__ == "__main__":
    main()
