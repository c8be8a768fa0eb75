"""Training, the only package that imports TensorFlow (`backend`): the network (`model`), the
training loop and its losses (`training`) and augmentation (`augment`)."""
