"""Helpers for tests that need (or imitate) a ComfyUI host."""
