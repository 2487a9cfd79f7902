"""Filters that stop weak-teacher garbage: parsing, label checks, length, echo and duplicate removal."""
