"""Earful's Scrapy project: spiders for public reviews and blog comments.

Spiders yield ``Mention`` items; item pipelines validate, normalise and store them through
:mod:`earful.pipeline.store` (see the collection issue).
"""
