"""Prompt files of the mixture difficulty grading."""
