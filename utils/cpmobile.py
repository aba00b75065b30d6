"""The DCASE2024/2025 Task 1 baseline network (simplified CP-Mobile, CPJKU) as a Keras functional model.

Owns :func:`cp_mobile`, a model builder for ``learner_method_parameters.cnn.model.config:
utils.cpmobile.cp_mobile`` (:mod:`utils.model` calls it as ``cp_mobile(input_shape, class_count,
**constants)``). Re-implemented from the published facts (the CPJKU repositories carry no licence):

- stem: two 3x3 stride-2 convolutions, 1 -> 8 -> 32 channels, no bias, each BN + ReLU;
- six inverted-bottleneck blocks (1x1 expand + BN + ReLU, 3x3 depthwise + BN + ReLU, 1x1 project +
  BN), widths in -> expanded -> out :data:`BLOCKS`, the stride (freq, time) on the depthwise conv;
  where input and output widths match a shortcut is added (identity, or for a strided block a 3x3
  average pool with that stride and padding 1 that counts the padding, as PyTorch's AvgPool2d), and
  every block ends in a ReLU (after the add where there is one);
- head: 1x1 conv 104 -> ``class_count`` without bias, BN, global average pool: the logits (layer
  ``logits``); then a softmax (layer ``softmax``): the project's losses, distillation, TFLite export and
  system output work on class probabilities, so the model outputs them. Cross-entropy on the
  probabilities is the reference's cross-entropy on the logits; ``logits_model`` gives the logits.

PyTorch pads every 3x3 convolution by 1 on each side; TensorFlow's ``same`` pads a stride-2 convolution
of an even size by (0, 1), so every 3x3 convolution and pool here is an explicit ``ZeroPadding2D(1)``
followed by a ``valid`` one. BatchNorm: epsilon 1e-5 and PyTorch's momentum 0.1, which is Keras'
momentum 0.9 (the share of the old running value). Convolutions are initialised as PyTorch's
``kaiming_normal_(mode="fan_out")`` (N(0, 2 / fan_out), fan_out = output channels x kernel area; for
the depthwise kernel (3, 3, C, 1) that is Keras' fan_in). 61,148 trainable parameters for 256 x 65
inputs and 10 classes. Layer names are fixed (``stem_conv1``, ``block3_depthwise``, ``head_conv``...),
so ``trainable_layers`` patterns such as ``[head_*]`` or ``[block6_*, head_*]`` work.

Shapes: input ``(batch, n_mels, n_frames, 1)`` (channels last), output ``(batch, class_count)``.
"""

from __future__ import annotations

from utils.errors import Task1aError

# (expanded width, output width, stride (freq, time)) of blocks 1..6; block 1 takes the stem's 32 channels
BLOCKS = (
    (64, 32, (1, 1)),
    (64, 32, (1, 1)),
    (64, 32, (1, 2)),
    (64, 56, (2, 1)),
    (120, 56, (1, 1)),
    (120, 104, (1, 1)),
)
STEM_WIDTHS = (8, 32)
PUBLISHED_PARAMETERS = 61_148  # trainable parameters for 10 classes (torchinfo)
PUBLISHED_MACS = 29_419_156  # torchinfo's multiply-accumulates for one 256 x 65 input


def _initializer(depthwise: bool = False):
    import keras

    # torch kaiming_normal_(mode="fan_out", nonlinearity="relu"): std = sqrt(2 / (out_channels * kh * kw))
    return keras.initializers.VarianceScaling(scale=2.0, mode="fan_in" if depthwise else "fan_out", distribution="untruncated_normal")


def cp_mobile(input_shape, class_count, BN_EPSILON: float = 1e-5, BN_MOMENTUM: float = 0.9):
    """The CP-Mobile network for ``input_shape`` ``(n_mels, n_frames, 1)`` and ``class_count`` classes.

    ``BN_EPSILON``, ``BN_MOMENTUM``: every BatchNormalization's (Keras momentum = 1 - PyTorch's).
    Returns an uncompiled ``keras.Model`` named ``cp_mobile`` whose output is the softmax of the logits.
    """
    import keras
    from keras import layers

    for name, value in (("BN_EPSILON", BN_EPSILON), ("BN_MOMENTUM", BN_MOMENTUM)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            raise Task1aError(f"learner_method_parameters.cnn.model.constants.{name} must be a number in (0, 1), got {value!r}; fix the value")

    def conv_bn(x, filters, kernel, strides, name, relu=True, depthwise=False):
        if kernel == 3:
            x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
        if depthwise:
            x = layers.DepthwiseConv2D(3, strides=strides, padding="valid", use_bias=False, depthwise_initializer=_initializer(True), name=name)(x)
        else:
            x = layers.Conv2D(filters, kernel, strides=strides, padding="valid", use_bias=False, kernel_initializer=_initializer(), name=name)(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
        return layers.ReLU(name=f"{name}_relu")(x) if relu else x

    inputs = keras.Input(shape=tuple(input_shape), name="input_layer")
    x = inputs
    for index, width in enumerate(STEM_WIDTHS, start=1):
        x = conv_bn(x, width, 3, 2, f"stem_conv{index}")
    width = STEM_WIDTHS[-1]
    for index, (expanded, out, stride) in enumerate(BLOCKS, start=1):
        name = f"block{index}"
        y = conv_bn(x, expanded, 1, 1, f"{name}_expand")
        y = conv_bn(y, expanded, 3, stride, f"{name}_depthwise", depthwise=True)
        y = conv_bn(y, out, 1, 1, f"{name}_project", relu=False)
        if width == out:
            shortcut = x
            if stride != (1, 1):
                shortcut = layers.ZeroPadding2D(1, name=f"{name}_shortcut_pad")(shortcut)
                shortcut = layers.AveragePooling2D(3, strides=stride, padding="valid", name=f"{name}_shortcut_pool")(shortcut)
            y = layers.Add(name=f"{name}_add")([y, shortcut])
        x = layers.ReLU(name=f"{name}_relu")(y)
        width = out
    x = conv_bn(x, class_count, 1, 1, "head_conv", relu=False)
    logits = layers.GlobalAveragePooling2D(name="logits")(x)
    outputs = layers.Softmax(name="softmax")(logits)
    return keras.Model(inputs, outputs, name="cp_mobile")


def logits_model(model):
    """The same network up to its ``logits`` layer (shares the weights): ``(batch, class_count)`` logits."""
    import keras

    return keras.Model(model.inputs, model.get_layer("logits").output, name=f"{model.name}_logits")


def trainable_parameter_count(model) -> int:
    """Trainable parameters (weights, BN scales and shifts; not the BN running statistics), torchinfo's count."""
    return int(sum(int(w.numpy().size) for w in model.trainable_weights))


def load_torch_state(model, state: dict) -> None:
    """Load a PyTorch state dict of the reference network (tools/reference/network.py) into :func:`cp_mobile`'s model.

    ``state``: ``{torch name: array}``. The mapping, name for name (``blocks.<i>.<part>`` is Keras'
    ``block<i+1>_<part>``, every other module has the Keras layer's name):

    - ``Conv2d.weight`` (out, in, kh, kw) -> ``Conv2D`` kernel (kh, kw, in, out);
    - depthwise ``Conv2d.weight`` (C, 1, kh, kw) -> ``DepthwiseConv2D`` kernel (kh, kw, C, 1);
    - ``BatchNorm2d`` weight, bias, running_mean, running_var -> gamma, beta, moving_mean, moving_variance
      (``num_batches_tracked`` has no Keras counterpart and is skipped).

    Every Keras weight must be given exactly once (Task1aError naming the first missing or unknown one).
    NCHW -> NHWC needs no other change: the input ``(batch, 1, n_mels, n_frames)`` is ``(batch, n_mels, n_frames, 1)``.
    """
    import keras
    import numpy as np

    values: dict[str, list] = {}
    for torch_name, value in state.items():
        parts = torch_name.split(".")
        if parts[-1] == "num_batches_tracked":
            continue
        layer_name = f"block{int(parts[1]) + 1}_{parts[2]}" if parts[0] == "blocks" and len(parts) == 4 else ".".join(parts[:-1])
        values.setdefault(layer_name, {})[parts[-1]] = np.asarray(value, dtype=np.float32)
    for layer in model.layers:
        if not layer.weights:
            continue
        given = values.pop(layer.name, None)
        if given is None:
            raise Task1aError(f"PyTorch state dict: no weights for layer {layer.name}; give the reference network's state dict")
        if isinstance(layer, keras.layers.BatchNormalization):
            order = ("weight", "bias", "running_mean", "running_var")
            if set(given) != set(order):
                raise Task1aError(f"PyTorch state dict: {layer.name} needs {', '.join(order)}, got {', '.join(sorted(given))}")
            layer.set_weights([given[key] for key in order])
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            layer.set_weights([given["weight"].transpose(2, 3, 0, 1)])
        elif isinstance(layer, keras.layers.Conv2D):
            layer.set_weights([given["weight"].transpose(2, 3, 1, 0)])
        else:
            raise Task1aError(f"PyTorch state dict: layer {layer.name} ({type(layer).__name__}) has no mapping from PyTorch")
    if values:
        raise Task1aError(f"PyTorch state dict: {sorted(values)[0]} matches no layer of the Keras network")
