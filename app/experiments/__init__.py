"""The book's experiments as plain PyTorch code.

Importing this package does not import torch: the web layer reads the parameter models and the
registry from here, and only worker processes import the training modules (``linear``, ``mlp``,
``cifar``) through :func:`app.experiments.registry.ExperimentSpec.load`.
"""
