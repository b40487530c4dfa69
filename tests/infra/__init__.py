"""Tests of the infrastructure as code: Bicep syntax, structure and checkov."""
