"""Workflows that start by themselves: schedules, model-change triggers and chained runs.

origin.py says who started a run and bounds chains; model_events.py is on_commit_of(); chains.py
starts follow-up definitions; schedules.py keeps django-celery-beat's PeriodicTask rows in sync.
"""
