"""Prompt files of the curation stages (``<name>.<version>.prompt``)."""
