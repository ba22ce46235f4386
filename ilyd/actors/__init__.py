"""Actors: thin pykka shells around the plain logic classes."""
