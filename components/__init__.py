"""tfrelay.components: custom TFX 1.16 components.

Each component is a sub-package with `component.py` (spec and construction-time validation),
`executor.py` (thin TFX glue) and pure helpers beside them.
"""
