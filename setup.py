"""Package discovery that pyproject.toml cannot express on its own.

pipelines/ and manifests/ live at the top of the repo (the design card) but install
inside the package as voxbox.pipelines / voxbox.manifests, so a plain
(non-editable) `pip install .` finds them from any directory without putting
generic top-level names into site-packages.
"""

from setuptools import find_packages, setup

packages = find_packages(include=["voxbox", "voxbox.*", "spark_tokenize", "spark_tokenize.*"])
packages += ["voxbox.pipelines", "voxbox.manifests"]

setup(
    packages=packages,
    package_dir={"voxbox.pipelines": "pipelines", "voxbox.manifests": "manifests"},
)
