"""PyTorch Playground: train the models of "Deep Learning with PyTorch" chapters 5-7 and watch them learn."""

__version__ = "0.1.0"
