"""The peer servers (each run from its own venv) and the model code they share."""
