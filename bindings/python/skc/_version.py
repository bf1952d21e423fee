"""The package's version: skc.h's SKC_VERSION_STRING, which it mirrors
(test_abi checks that they agree).  A literal, so that the packaging
(pyproject.toml) reads it without loading libskc."""

__version__ = "0.4.0"
