"""The Trainer: trains a Keras model from Examples and exports it serving-ready."""
