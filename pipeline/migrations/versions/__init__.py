"""Migration revisions, named by date so that ``ls`` shows their order."""
