"""Stored tuning grids (JSON data files), read by :func:`recsys_course.models.tuning.tuning_table`."""
