"""The serving core: Source (what should be loaded) -> Manager (loads, swaps, unloads)."""
