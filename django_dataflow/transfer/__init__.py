"""File import and export for registered models (manage.py dataflow_import / dataflow_export).

Imports stream a file's rows through a generator into the model's BulkCreate/BulkUpsert node
(COPY on PostgreSQL); exports stream a List node's query through an iterator. See docs/commands.md.
"""
