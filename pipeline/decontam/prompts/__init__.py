"""Prompt files of the decontamination judge."""
