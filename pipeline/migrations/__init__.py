"""Alembic migrations for Earful's schema (see :mod:`earful.pipeline.schema`)."""
