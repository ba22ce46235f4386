"""Actors: the supervisor and one actor per org, whose parts are components run in its
thread around the plain logic classes."""
