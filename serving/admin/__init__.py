"""`tfrelay models`: list, roll back and label model versions in the bucket (issue 16).

Infra teams change what every replica serves by changing the bucket, never a server: a
rollback republishes an older version's files as the next version (`rollback.py`), a label edit
rewrites the `--model_config_file` the servers re-read (`labels.py`), and the listing shows the
bucket as the servers judge it (`listing.py`) beside what each replica serves (`endpoints.py`).
"""
