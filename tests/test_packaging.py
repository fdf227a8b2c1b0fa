"""The package's own metadata: an install prints no deprecation of ours."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.licenses import canonicalize_license_expression
from packaging.requirements import Requirement

PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())


def test_the_license_is_an_spdx_expression_built_by_a_setuptools_that_reads_it():
    """A TOML table is deprecated since setuptools 77, which reads the SPDX string."""
    license = PYPROJECT["project"]["license"]
    assert isinstance(license, str) and canonicalize_license_expression(license) == license
    [setuptools] = [r for r in map(Requirement, PYPROJECT["build-system"]["requires"])
                    if r.name == "setuptools"]
    assert "77.0.0" in setuptools.specifier and "76.1.0" not in setuptools.specifier
