"""Maps the top-level folders onto the `tfrelay` namespace (docs/architecture.md, "Layers").

pyproject.toml holds all metadata; this shim only computes `packages`/`package_dir` so that a new
sub-folder with an `__init__.py` is picked up without editing a list.
"""

from setuptools import find_packages, setup

FOLDER_OF_PACKAGE = {
    "tfrelay": "tfrelay",
    "tfrelay.serving": "serving",
    "tfrelay.components": "components",
    "tfrelay.pipelines": "pipelines",
}

packages: list[str] = []
for package, folder in FOLDER_OF_PACKAGE.items():
    packages.append(package)
    packages.extend(f"{package}.{sub}" for sub in find_packages(folder))

setup(
    packages=packages,
    package_dir=FOLDER_OF_PACKAGE,
    package_data={"": ["*.json", "*.yaml", "*.txt", "*.csv", "*.pbtxt"]},
)
