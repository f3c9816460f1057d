"""Palmer penguins (shipped by the `palmerpenguins` package) as CSV for CsvExampleGen.

The package's CSV writes missing measurements as "NA", which CsvExampleGen would read as
strings and turn every numeric column into a text one; we write them as empty cells, which it
reads as missing values.
"""

from __future__ import annotations

import csv
import os
import pathlib
import random

LABEL_KEY = "species"
NUMERIC_FEATURES = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
CATEGORICAL_FEATURES = ["island", "sex"]
FEATURE_KEYS = NUMERIC_FEATURES + CATEGORICAL_FEATURES
# The "initial" data is a seeded sample of this many penguins; the rest arrive later as new data
# for a retrain. (The CSV is sorted by species: its first rows hold no Chinstrap at all.)
INITIAL_ROWS = 240
_SPLIT_SEED = 20071129


def _source_csv() -> pathlib.Path:
    import palmerpenguins

    return pathlib.Path(palmerpenguins.__file__).parent / "data" / "penguins.csv"


def read_rows() -> list[dict[str, str]]:
    """Every penguin as {column: value}, with "NA" turned into ""."""
    with open(_source_csv(), newline="") as f:
        return [{k: ("" if v == "NA" else v) for k, v in row.items()} for row in csv.DictReader(f)]


def write_csv(path: str | os.PathLike, rows: list[dict[str, str]]) -> pathlib.Path:
    """Writes rows as a CSV file (directories created)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = [LABEL_KEY, *FEATURE_KEYS, "year"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _shuffled_rows() -> list[dict[str, str]]:
    rows = read_rows()
    random.Random(_SPLIT_SEED).shuffle(rows)
    return rows


def write_initial_data(data_root: str | os.PathLike) -> pathlib.Path:
    """The first batch of penguins: `<data_root>/penguins-initial.csv`."""
    return write_csv(
        pathlib.Path(data_root) / "penguins-initial.csv", _shuffled_rows()[:INITIAL_ROWS]
    )


def write_new_data(data_root: str | os.PathLike) -> pathlib.Path:
    """The penguins observed since: `<data_root>/penguins-new.csv` (retrain on both files)."""
    return write_csv(pathlib.Path(data_root) / "penguins-new.csv", _shuffled_rows()[INITIAL_ROWS:])


def write_all(data_root: str | os.PathLike) -> pathlib.Path:
    """Every penguin in one file: `<data_root>/penguins.csv`."""
    return write_csv(pathlib.Path(data_root) / "penguins.csv", read_rows())
