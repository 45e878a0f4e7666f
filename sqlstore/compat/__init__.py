"""Thin adapters that let existing agent frameworks use sqlstore unchanged.

Each adapter imports its framework only inside its own module (an optional extra).
"""
