"""Whole-volume jobs: building a pyramid, verifying every level, checking the
label index against a recount."""
