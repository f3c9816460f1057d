"""Servables: one loaded model version that runs named signatures on numpy inputs."""
