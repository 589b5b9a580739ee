"""Earful's classifiers: texts in, predictions out.

Knows nothing about databases or crawling. The sentiment and topic models, their training
and evaluation code and the small trained artefacts that ship in the repository live here
(see the classification issue); the pipeline's classification runs call into this package.
"""
