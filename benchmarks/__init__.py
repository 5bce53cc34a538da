"""Ratio benchmarks: each compares two things in one run and prints one comparable line."""
