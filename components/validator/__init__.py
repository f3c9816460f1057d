"""The Validator: TFMA thresholds against the version in the bucket, plus the serving contract."""
