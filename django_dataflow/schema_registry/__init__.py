"""The persistent model registry: what each application registered, stored through migrations.

description  a model (or a registry row, or an introspected table) as JSON-safe field dicts + hash
diff         field-by-field differences between two descriptions, rendered for people
store        writing and reading RegisteredModel / ModelSchemaVersion rows (post_migrate, dataflow_sync)
drift        unapplied/missing migrations, disagreeing applications, missing tables and columns
dynamic      unmanaged model classes built from descriptions (load_from_database, load_tables)
introspection  existing tables -> descriptions, with Django's inspectdb helpers
model_code   descriptions -> Python model source (dataflow_discover --write)
policy       DATAFLOW["ALLOW_MIGRATIONS"]: migrate refuses registered models' migrations
risk         LOW/MEDIUM/HIGH for each pending migration operation (dataflow_migrate --plan)

Nothing here is imported during django.setup(): AppConfig.ready() connects two small receivers
that import store (post_migrate) and policy (pre_migrate) on the first signal.
"""
