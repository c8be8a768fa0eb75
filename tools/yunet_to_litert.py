"""Convert the shipped YuNet ONNX (core/detect/weights, MIT) into the LiteRT model core/detect/yunet.py runs.

Why: OpenCV's DNN runs YuNet's 2023mar int8bq graph in about 15 ms per 640x480 photo on one
core, most of a batch photo's cost; the same network under LiteRT's XNNPACK kernels is several
times cheaper (bench/detection.py has the figures). The graph is small and plain (convolutions,
depthwise convolutions, ReLU, 2x2 max-pooling, nearest upsampling, additions, sigmoids), so it
is rebuilt here layer by layer in Keras from the ONNX nodes, with the block-quantized weights
dequantized exactly as ONNX's DequantizeLinear defines, and exported with a free input height
and width. Two changes that do not alter the maths: the input is RGB (the first convolution's
input channels are reversed, where OpenCV feeds BGR) and the graph works channels-last. And
every shape in the graph is static but the image's height and width (batch of one, the
upsampling as DEPTH_TO_SPACE, the heads' reshapes with constant shapes): Keras' UpSampling2D and
Reshape export as SHAPE/STRIDED_SLICE/PACK/TILE ops (56 in all) that XNNPACK does not run, which
split the graph and make LiteRT prepare part of it again at every call (`bench/detection.py`,
AFW photos at 640x480, old and new export one after the other: 22.4 against 17.1 ms a photo).

Developer tool, run once when the weights change (needs `pip install onnx==1.23.2` besides the
project's requirements); tests/test_yunet.py checks the result against OpenCV's own detector:

    .venv/bin/python tools/yunet_to_litert.py
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.detect.yunet import LITERT_WEIGHTS, ONNX_WEIGHTS, STRIDES  # noqa: E402

HEADS = ("cls", "obj", "bbox", "kps")  # 1 + 1 + 4 + 10 values per cell, in this order


def dequantized(nodes, constants: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Float values of every DequantizeLinear output (per-tensor or blocked along `axis`), and
    of the Reshape that gives a weight its convolution shape."""
    import onnx

    values = dict(constants)
    for node in nodes:
        if node.op_type == "DequantizeLinear":
            attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            q, scale, zero = (values[name].astype(np.float32) for name in node.input)
            if scale.size > 1:  # blocked: each `block_size` run along `axis` has its own scale
                axis, block = attributes.get("axis", 1), attributes["block_size"]
                scale = np.repeat(scale, block, axis=axis).take(range(q.shape[axis]), axis=axis)
                zero = np.repeat(zero, block, axis=axis).take(range(q.shape[axis]), axis=axis)
            values[node.output[0]] = (q - zero) * scale
        elif node.op_type == "Reshape" and node.input[0] in values and node.input[1] in values:
            values[node.output[0]] = values[node.input[0]].reshape(values[node.input[1]])
    return values


def _doubled(x):
    """2x nearest-neighbour upsampling written as DEPTH_TO_SPACE of four copies of the channels
    (each output pixel of a 2x2 block takes one copy, i.e. its input pixel)."""
    import keras
    import tensorflow as tf

    return tf.nn.depth_to_space(keras.ops.concatenate([x] * 4, axis=-1), 2)


def build_keras(path: Path):
    """The YuNet graph as a Keras model: RGB float 0-255 input of any size divisible by 32, one
    output (1, cells, 16): every cell of the stride-8 grid row by row, then stride 16, then 32,
    each with the ONNX heads' values (cls, obj, bbox 4, kps 10). One tensor, so no output order
    to get wrong after export."""
    import keras
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    values = dequantized(graph.node, {i.name: numpy_helper.to_array(i) for i in graph.initializer})
    image = keras.Input((None, None, 3), batch_size=1, name="input")
    tensors = {graph.input[0].name: image}
    first_conv = True
    for node in graph.node:
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        inputs = [tensors.get(name) for name in node.input]
        if node.op_type == "Conv":
            weight, bias = values[node.input[1]], values[node.input[2]]
            if first_conv:  # OpenCV feeds BGR: reverse the input channels so RGB goes in
                weight, first_conv = weight[:, ::-1], False
            out, _, kh, kw = weight.shape
            stride, pads, group = attributes["strides"][0], attributes["pads"], attributes.get("group", 1)
            x = inputs[0]
            if pads[0]:
                x = keras.layers.ZeroPadding2D(pads[0])(x)
            if group == 1:
                layer = keras.layers.Conv2D(out, (kh, kw), strides=stride, padding="valid")
                x = layer(x)
                layer.set_weights([weight.transpose(2, 3, 1, 0), bias])
            else:
                assert weight.shape[1] == 1 and group == out, "only depthwise grouped convolutions occur"
                layer = keras.layers.DepthwiseConv2D((kh, kw), strides=stride, padding="valid")
                x = layer(x)
                layer.set_weights([weight.transpose(2, 3, 0, 1), bias])
            tensors[node.output[0]] = x
        elif node.op_type == "Relu":
            tensors[node.output[0]] = keras.layers.ReLU()(inputs[0])
        elif node.op_type == "Sigmoid":
            tensors[node.output[0]] = keras.layers.Activation("sigmoid")(inputs[0])
        elif node.op_type == "MaxPool":
            assert attributes["kernel_shape"] == [2, 2] and attributes["strides"] == [2, 2]
            tensors[node.output[0]] = keras.layers.MaxPooling2D(2)(inputs[0])
        elif node.op_type == "Resize":
            assert attributes["mode"] == b"nearest"
            tensors[node.output[0]] = keras.layers.Lambda(_doubled)(inputs[0])
        elif node.op_type == "Add":
            tensors[node.output[0]] = keras.layers.Add()(inputs)
        elif node.op_type == "Transpose":  # NCHW -> NHWC before each head's flattening: a no-op here
            assert attributes["perm"] == [0, 2, 3, 1]
            tensors[node.output[0]] = inputs[0]
        elif node.op_type == "Reshape" and inputs[0] is not None:  # (1, H, W, C) -> (1, H*W, C)
            channels = int(values[node.input[1]][-1])
            tensors[node.output[0]] = keras.layers.Lambda(lambda x, c=channels: keras.ops.reshape(x, (1, -1, c)))(inputs[0])
        elif node.op_type not in ("DequantizeLinear", "Reshape"):
            raise ValueError(f"unsupported ONNX op {node.op_type}")
    per_stride = [keras.layers.Concatenate()([tensors[f"{head}_{stride}"] for head in HEADS]) for stride in STRIDES]
    return keras.Model(image, keras.layers.Concatenate(axis=1, name="cells")(per_stride), name="yunet")


def main() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    model = build_keras(ONNX_WEIGHTS)
    with tempfile.TemporaryDirectory() as tmp:
        model.export(str(Path(tmp) / "yunet.tflite"), format="litert")
        LITERT_WEIGHTS.write_bytes((Path(tmp) / "yunet.tflite").read_bytes())
    print(f"wrote {LITERT_WEIGHTS.relative_to(ROOT)} ({LITERT_WEIGHTS.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
