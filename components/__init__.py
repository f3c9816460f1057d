"""tfrelay.components: custom TFX 1.16 components (Trainer, Validator, BucketPusher, ...)."""
