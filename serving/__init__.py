"""tfrelay.serving: the TF-Serving-compatible model server and the bucket contract.

Depends on nothing else in the repository, and on nothing from TFX, Beam or KFP, so that the
server image installs only `tfrelay[serving,s3,gcs]`.
"""
