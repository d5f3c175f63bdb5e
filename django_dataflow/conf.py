"""The DATAFLOW settings dict: defaults, validation and small typed accessors."""

from __future__ import annotations

import os
from functools import cache
from typing import Any, NamedTuple

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

SETTING_NAME = "DATAFLOW"


# NamedTuples rather than frozen dataclasses: this module is imported during django.setup(),
# and defining a frozen dataclass takes about ten times as long as defining a NamedTuple.
class Option(NamedTuple):
    """One key of the DATAFLOW dict: its type, default and meaning."""

    types: tuple[type, ...]
    default: Any
    help: str


OPTIONS: dict[str, Option] = {
    "MODELS": Option(
        (list, tuple),
        (),
        "Models to register without a decorator: 'app_label.Model' or "
        '{"model": ..., "name": ..., "exclude_fields": [...], "row_filter": "dotted.path", '
        '"audit": true | "rows" | false}.',
    ),
    "DEFAULT_LIMIT": Option((int,), 100, "Records a List node returns when it gives no 'limit'."),
    "MAX_LIMIT": Option((int,), 10_000, "Largest 'limit' a List node accepts."),
    "DATABASE": Option((str,), "default", "Database alias workflows run on."),
    "RECORD_LOCAL_RUNS": Option(
        (bool,), False, "Write a WorkflowRun row for every LocalRuntime run (Celery runs always do)."
    ),
    "CELERY_APP": Option(
        (str, type(None)), None,
        "Dotted path of the Celery app CeleryRuntime sends through (default: Celery's current app).",
    ),
    "CELERY_QUEUE": Option((str,), "dataflow", "Queue CeleryRuntime sends runs to when given no queue."),
    "CELERY_EAGER": Option(
        (bool, type(None)), None,
        "Run CeleryRuntime in this process: None decides (eager when no broker is configured).",
    ),
    "CELERY_MAX_RETRIES": Option(
        (int,), 5, "Automatic retries of a Celery run after a transient database error (0: none)."
    ),
    "CELERY_RETRY_DELAY": Option(
        (int, float), 1.0, "Seconds before the first retry; each further retry waits twice as long."
    ),
    "CELERY_PROGRESS_INTERVAL": Option(
        (int, float), 0.5, "Least seconds between two progress reports a worker publishes."
    ),
    "MAX_FILTER_DEPTH": Option((int,), 12, "Deepest nesting of $and/$or/$nor/$not in one filter."),
    "MAX_FILTER_TERMS": Option((int,), 1_000, "Most conditions one filter may hold."),
    "BULK_BATCH_SIZE": Option((int,), 1_000, "Rows per chunk for bulk nodes without 'batch_size'."),
    "MAX_REGEX_LENGTH": Option((int,), 1_000, "Longest pattern $regex/$iregex accept."),
    "APPLICATION": Option(
        (str, type(None)), None,
        "This application's name in the model registry table (default: the settings module's "
        "top-level package).",
    ),
    "ALLOW_MIGRATIONS": Option(
        (bool,), True,
        "Whether migrate may apply migrations of dataflow-registered models in this process.",
    ),
    "MAX_NODES": Option((int,), 1_000, "Most nodes one workflow may hold."),
    "MAX_CONNECTIONS": Option((int,), 10_000, "Most connections one workflow may hold."),
    "MAX_PARAMS_BYTES": Option(
        (int,), 1_048_576,
        "Largest JSON size of one node's params (bulk 'data' aside) and of a run's inputs.",
    ),
    "MAX_BULK_ROWS": Option(
        (int,), 1_000_000, "Most rows one bulk node may write, and most values in $in/$nin/'ids'."
    ),
    "STATEMENT_TIMEOUT_MS": Option(
        (int, type(None)), None,
        "PostgreSQL statement_timeout of a run's SQL (SET LOCAL in the run's transaction); None: off.",
    ),
    "API_MAX_WAIT_SECONDS": Option(
        (int, float), 30.0, "Longest an HTTP API request with ?wait=1 waits for its run to finish."
    ),
    "API_MAX_BODY_BYTES": Option(
        (int,), 10_485_760, "Largest request body the HTTP API reads; larger ones get 413."
    ),
    "API_RATE_LIMIT": Option(
        (str, type(None)), None,
        "Requests per user to the HTTP API, like '120/m' (per second, minute, hour or day: s, m, h, "
        "d), counted in the Django cache; None: unlimited.",
    ),
    "ADMIN_DASHBOARD_DAYS": Option(
        (int,), 14, "Days the admin dashboard covers by default (the page offers 1 to 90)."
    ),
    "ADMIN_DASHBOARD_MAX_RUNS": Option(
        (int,), 5_000,
        "Most recent runs the admin dashboard reads for per-node latency and rows written.",
    ),
    "CACHE": Option(
        (dict, type(None)), None,
        'Result cache of Read/List/Count/Aggregate: {"ALIAS": "default", "TTL": 300} (a django-redis '
        "alias in production); None: off. See docs/caching.md.",
    ),
    "AUDIT": Option(
        (bool, str), False,
        'Audit every registered model\'s writes: true (one entry per op), "rows" (bulk ops: one per '
        "row) or false (only models registered with audit=...).",
    ),
    "AUDIT_REDACT": Option(
        (list, tuple), (),
        "Field names ('password' or 'app_label.Model.field') whose values never enter audit entries.",
    ),
    "SLOW_NODE_SECONDS": Option(
        (int, float, type(None)), None,
        "Nodes running longer are counted in a metric and logged with their params; None: off.",
    ),
    "METRICS_TOKEN": Option(
        (str, type(None)), None,
        "Bearer token the metrics view accepts (besides a staff session); None: staff only.",
    ),
    "HEALTH_TIMEOUT": Option(
        (int, float), 2.0, "Seconds the health check waits for the cache and Celery workers."
    ),
    "MAX_CHAIN_DEPTH": Option(
        (int,), 5,
        "Most runs in a row started by other runs (follow-ups, triggers fired by a run's writes).",
    ),
    "TRIGGER_REFRESH_SECONDS": Option(
        (int, float, type(None)), 30,
        "Seconds after which a process re-reads the stored model-change triggers (ModelTriggerRule) "
        "at its next request, Celery task or new database connection; None: only at its first "
        "connection and after its own changes.",
    ),
}

#: Keys of DATAFLOW['CACHE'] and their types.
CACHE_KEYS: dict[str, tuple[type, ...]] = {"ALIAS": (str,), "TTL": (int,)}
#: Values DATAFLOW['AUDIT'] and register(..., audit=...) accept.
AUDIT_MODES = (False, True, "rows")


#: Longest window (days) the admin dashboard aggregates over.
MAX_DASHBOARD_DAYS = 90

#: Float-valued options (seconds), checked for > 0 instead of >= 1.
_POSITIVE_NUMBERS = frozenset({
    "CELERY_RETRY_DELAY", "CELERY_PROGRESS_INTERVAL", "SLOW_NODE_SECONDS", "HEALTH_TIMEOUT",
    "API_MAX_WAIT_SECONDS", "TRIGGER_REFRESH_SECONDS",
})

#: API_RATE_LIMIT: "<requests>/<period>"; the period's seconds by its letter.
RATE_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class Problem(NamedTuple):
    """A configuration problem, reported as a system check and at first use."""

    id: str
    message: str


def find_problems(raw: Any) -> list[Problem]:
    """Validate a raw DATAFLOW value; shared by the system checks and the accessors."""
    if raw is None:
        return []
    if not isinstance(raw, dict):
        return [Problem("django_dataflow.E002", f"{SETTING_NAME} must be a dict, not {type(raw).__name__}.")]
    problems = [
        Problem(
            "django_dataflow.E001",
            f"Unknown key {SETTING_NAME}[{key!r}]; valid keys: {', '.join(sorted(OPTIONS))}.",
        )
        for key in raw
        if key not in OPTIONS
    ]
    for key, option in OPTIONS.items():
        if key not in raw:
            continue
        value = raw[key]
        # A flag rather than `if not isinstance(...)`: that would narrow value to object below.
        wrong_bool = isinstance(value, bool) and bool not in option.types
        well_typed = isinstance(value, option.types) and not wrong_bool
        if not well_typed:
            expected = " or ".join(t.__name__ for t in option.types)
            problems.append(
                Problem(
                    "django_dataflow.E002",
                    f"{SETTING_NAME}[{key!r}] must be {expected}, not {type(value).__name__}.",
                )
            )
        elif key == "MODELS" and not all(_valid_model_entry(v) for v in value):
            problems.append(
                Problem(
                    "django_dataflow.E003",
                    f"{SETTING_NAME}['MODELS'] entries must be 'app_label.ModelName' strings or "
                    "dicts with 'model' and optional 'name', 'exclude_fields', 'row_filter' and 'audit'.",
                )
            )
        elif key in _FEATURE_CHECKS:
            problems += _FEATURE_CHECKS[key](value)
        elif key in _POSITIVE_NUMBERS and value is not None and not value > 0:
            problems.append(
                Problem("django_dataflow.E003", f"{SETTING_NAME}[{key!r}] must be greater than 0.")
            )
        elif key == "CELERY_QUEUE" and not value:
            problems.append(Problem("django_dataflow.E003", f"{SETTING_NAME}['CELERY_QUEUE'] is empty."))
        elif key == "APPLICATION" and value is not None and not 0 < len(value.strip()) <= 100:
            problems.append(
                Problem(
                    "django_dataflow.E003",
                    f"{SETTING_NAME}['APPLICATION'] must be a name of 1 to 100 characters.",
                )
            )
        elif key == "API_RATE_LIMIT" and value is not None and parse_rate(value) is None:
            problems.append(
                Problem(
                    "django_dataflow.E040",
                    f"{SETTING_NAME}['API_RATE_LIMIT'] is {value!r}; expected '<requests>/<period>' "
                    "with requests >= 1 and period one of s, m, h, d (e.g. '120/m').",
                )
            )
        elif key == "CELERY_MAX_RETRIES" and value < 0:
            problems.append(
                Problem("django_dataflow.E003", f"{SETTING_NAME}['CELERY_MAX_RETRIES'] must be at least 0.")
            )
        elif (
            isinstance(value, int) and not isinstance(value, bool) and value < 1
            and key != "CELERY_MAX_RETRIES"
        ):
            problems.append(
                Problem("django_dataflow.E003", f"{SETTING_NAME}[{key!r}] must be at least 1.")
            )
    days = raw.get("ADMIN_DASHBOARD_DAYS")
    if isinstance(days, int) and not isinstance(days, bool) and days > MAX_DASHBOARD_DAYS:
        problems.append(
            Problem(
                "django_dataflow.E050",
                f"{SETTING_NAME}['ADMIN_DASHBOARD_DAYS'] ({days}) exceeds {MAX_DASHBOARD_DAYS}, the "
                "longest window the admin dashboard shows.",
            )
        )
    merged = {k: o.default for k, o in OPTIONS.items()} | {k: v for k, v in raw.items()}
    limits_ok = all(isinstance(merged[k], int) for k in ("DEFAULT_LIMIT", "MAX_LIMIT"))
    if limits_ok and merged["DEFAULT_LIMIT"] > merged["MAX_LIMIT"]:
        problems.append(
            Problem(
                "django_dataflow.E003",
                f"{SETTING_NAME}['DEFAULT_LIMIT'] ({merged['DEFAULT_LIMIT']}) exceeds "
                f"MAX_LIMIT ({merged['MAX_LIMIT']}).",
            )
        )
    return problems


def _cache_problems(value: Any) -> list[Problem]:
    if value is None:
        return []
    problems = [
        Problem(
            "django_dataflow.E030",
            f"Unknown key {SETTING_NAME}['CACHE'][{k!r}]; valid keys: {', '.join(CACHE_KEYS)}.",
        )
        for k in value
        if k not in CACHE_KEYS
    ]
    for k, types in CACHE_KEYS.items():
        if k in value and (not isinstance(value[k], types) or isinstance(value[k], bool)):
            problems.append(
                Problem(
                    "django_dataflow.E030",
                    f"{SETTING_NAME}['CACHE'][{k!r}] must be {' or '.join(t.__name__ for t in types)}, "
                    f"not {type(value[k]).__name__}.",
                )
            )
    if isinstance(value.get("TTL"), int) and not isinstance(value.get("TTL"), bool) and value["TTL"] < 1:
        problems.append(
            Problem("django_dataflow.E030", f"{SETTING_NAME}['CACHE']['TTL'] must be at least 1.")
        )
    alias = value.get("ALIAS", "default")
    if isinstance(alias, str) and alias not in getattr(settings, "CACHES", {"default": {}}):
        problems.append(
            Problem(
                "django_dataflow.E031",
                f"{SETTING_NAME}['CACHE']['ALIAS'] is {alias!r}, which is not in CACHES.",
            )
        )
    return problems


def _audit_problems(value: Any) -> list[Problem]:
    if value in AUDIT_MODES and (isinstance(value, bool) or value == "rows"):
        return []
    return [
        Problem(
            "django_dataflow.E032",
            f"{SETTING_NAME}['AUDIT'] must be true, false or \"rows\", not {value!r}.",
        )
    ]


def _redact_problems(value: Any) -> list[Problem]:
    bad = [v for v in value if not isinstance(v, str) or not v or v.count(".") not in (0, 2)]
    if not bad:
        return []
    return [
        Problem(
            "django_dataflow.E033",
            f"{SETTING_NAME}['AUDIT_REDACT'] entries must be 'field' or 'app_label.Model.field' "
            f"strings; refused: {bad!r}.",
        )
    ]


def _token_problems(value: Any) -> list[Problem]:
    if value is None or len(value.strip()) >= 16:
        return []
    return [
        Problem(
            "django_dataflow.E034",
            f"{SETTING_NAME}['METRICS_TOKEN'] must be at least 16 characters (or None for staff only).",
        )
    ]


#: Value checks of the cache, audit and monitoring options (their types are checked first).
_FEATURE_CHECKS = {
    "CACHE": _cache_problems,
    "AUDIT": _audit_problems,
    "AUDIT_REDACT": _redact_problems,
    "METRICS_TOKEN": _token_problems,
}


def parse_rate(text: str) -> tuple[int, int] | None:
    """'120/m' -> (120, 60): requests and window seconds; None when the text is not a rate."""
    count, _, period = text.strip().partition("/")
    if not count.isascii() or not count.isdigit() or int(count) < 1 or period not in RATE_PERIODS:
        return None
    return int(count), RATE_PERIODS[period]


def _valid_model_entry(value: Any) -> bool:
    if isinstance(value, dict):
        if set(value) - {"model", "name", "exclude_fields", "row_filter", "audit"} or "model" not in value:
            return False
        excluded = value.get("exclude_fields", [])
        return (
            _valid_model_entry(value["model"])
            and isinstance(value.get("name", ""), str)
            and isinstance(value.get("row_filter", ""), str)
            and isinstance(excluded, (list, tuple))
            and all(isinstance(f, str) for f in excluded)
            and (value.get("audit") is None or value.get("audit") in ("rows", True, False))
        )
    return isinstance(value, str) and value.count(".") == 1


def raw_settings() -> Any:
    """The DATAFLOW setting as the project wrote it (None when absent)."""
    return getattr(settings, SETTING_NAME, None)


@cache
def _values() -> dict[str, Any]:
    raw = raw_settings()
    problems = find_problems(raw)
    if problems:
        detail = "; ".join(f"[{p.id}] {p.message}" for p in problems)
        raise ImproperlyConfigured(f"Invalid {SETTING_NAME} setting: {detail}")
    return {k: o.default for k, o in OPTIONS.items()} | dict(raw or {})


_generation = [0]


@receiver(setting_changed)
def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME:
        _values.cache_clear()
        _generation[0] += 1


def generation() -> int:
    """Changes whenever the DATAFLOW setting does: part of the key of anything derived from it."""
    return _generation[0]


def get(key: str) -> Any:
    """One validated DATAFLOW value; invalid settings raise ImproperlyConfigured at first use."""
    return _values()[key]


class ModelSetting(NamedTuple):
    """One DATAFLOW['MODELS'] entry, normalised."""

    label: str
    name: str | None = None
    exclude_fields: tuple[str, ...] = ()
    #: Dotted path of a callable(user) -> Q, imported when the registry is populated.
    row_filter: str | None = None
    #: Audit mode of the model's writes (None: DATAFLOW['AUDIT'] decides).
    audit: bool | str | None = None


def model_settings() -> list[ModelSetting]:
    """Models listed in DATAFLOW['MODELS'], as labels with their options."""
    return [
        ModelSetting(
            v["model"], v.get("name"), tuple(v.get("exclude_fields", ())), v.get("row_filter"), v.get("audit")
        )
        if isinstance(v, dict)
        else ModelSetting(v)
        for v in get("MODELS")
    ]


def default_limit() -> int:
    """Records a List node returns when no limit is given."""
    return int(get("DEFAULT_LIMIT"))


def max_limit() -> int:
    """Largest limit a List node accepts."""
    return int(get("MAX_LIMIT"))


def database() -> str:
    """The database alias workflows run on."""
    return str(get("DATABASE"))


def record_local_runs() -> bool:
    """Whether LocalRuntime records WorkflowRun rows by default."""
    return bool(get("RECORD_LOCAL_RUNS"))


def celery_app_path() -> str | None:
    """Dotted path of the Celery app runs are sent through, or None for Celery's current app."""
    return get("CELERY_APP")


def celery_queue() -> str:
    """Queue Celery runs go to by default."""
    return str(get("CELERY_QUEUE"))


def celery_eager() -> bool | None:
    """True/False forces CeleryRuntime's eager mode; None lets the broker configuration decide."""
    return get("CELERY_EAGER")


def celery_max_retries() -> int:
    """Automatic retries after transient database errors."""
    return int(get("CELERY_MAX_RETRIES"))


def celery_retry_delay() -> float:
    """Seconds before the first retry (doubling after that)."""
    return float(get("CELERY_RETRY_DELAY"))


def celery_progress_interval() -> float:
    """Least seconds between two published progress reports."""
    return float(get("CELERY_PROGRESS_INTERVAL"))


def max_filter_depth() -> int:
    """Deepest logical nesting a filter may have."""
    return int(get("MAX_FILTER_DEPTH"))


def max_filter_terms() -> int:
    """Most conditions a filter may hold."""
    return int(get("MAX_FILTER_TERMS"))


def max_regex_length() -> int:
    """Longest $regex pattern accepted."""
    return int(get("MAX_REGEX_LENGTH"))


def bulk_batch_size() -> int:
    """Default rows per chunk for bulk nodes."""
    return int(get("BULK_BATCH_SIZE"))


def application() -> str:
    """This application's name in the model registry (APPLICATION, else the settings package)."""
    name = get("APPLICATION")
    if name:
        return str(name).strip()
    # override_settings() (and pytest-django's `settings`) hides SETTINGS_MODULE; the variable it
    # was read from still names it, so a project's own tests keep the project's name.
    module = (getattr(settings, "SETTINGS_MODULE", None) or os.environ.get("DJANGO_SETTINGS_MODULE")
              or "default")
    return module.split(".", 1)[0]


def allow_migrations() -> bool:
    """Whether migrate may apply migrations of registered models in this process."""
    return bool(get("ALLOW_MIGRATIONS"))


def max_nodes() -> int:
    """Most nodes a workflow may hold."""
    return int(get("MAX_NODES"))


def max_connections() -> int:
    """Most connections a workflow may hold."""
    return int(get("MAX_CONNECTIONS"))


def max_params_bytes() -> int:
    """Largest JSON size of one node's params (bulk data aside) and of a run's inputs."""
    return int(get("MAX_PARAMS_BYTES"))


def max_bulk_rows() -> int:
    """Most rows a bulk node may write (and values a list operand may hold)."""
    return int(get("MAX_BULK_ROWS"))


def statement_timeout_ms() -> int | None:
    """PostgreSQL statement timeout for a run's statements, in milliseconds (None: off)."""
    value = get("STATEMENT_TIMEOUT_MS")
    return None if value is None else int(value)


def api_max_wait_seconds() -> float:
    """Longest an HTTP API request waits for its run (?wait=1)."""
    return float(get("API_MAX_WAIT_SECONDS"))


def api_max_body_bytes() -> int:
    """Largest request body the HTTP API reads."""
    return int(get("API_MAX_BODY_BYTES"))


def api_rate_limit() -> tuple[int, int] | None:
    """(requests, window seconds) per user for the HTTP API, or None when unlimited."""
    value = get("API_RATE_LIMIT")
    return None if value is None else parse_rate(value)


def admin_dashboard_days() -> int:
    """Days the admin dashboard covers when the page asks for no other window."""
    return int(get("ADMIN_DASHBOARD_DAYS"))


def admin_dashboard_max_runs() -> int:
    """Most recent runs the dashboard reads node timings from."""
    return int(get("ADMIN_DASHBOARD_MAX_RUNS"))


class CacheSettings(NamedTuple):
    """DATAFLOW['CACHE'], normalised."""

    alias: str
    ttl: int


def cache_settings() -> CacheSettings | None:
    """The result cache's alias and default TTL, or None when caching is off."""
    value = get("CACHE")
    if value is None:
        return None
    return CacheSettings(str(value.get("ALIAS", "default")), int(value.get("TTL", 300)))


def audit_default() -> bool | str:
    """The audit mode of registered models that give none: False, True or "rows"."""
    return get("AUDIT")


def audit_redact() -> frozenset[str]:
    """Field names (bare or 'app_label.Model.field') kept out of audit values."""
    return frozenset(get("AUDIT_REDACT"))


def slow_node_seconds() -> float | None:
    """Node duration above which a node counts as slow (None: off)."""
    value = get("SLOW_NODE_SECONDS")
    return None if value is None else float(value)


def metrics_token() -> str | None:
    """The bearer token of the metrics view (None: staff sessions only)."""
    return get("METRICS_TOKEN")


def health_timeout() -> float:
    """Seconds the health check waits for the cache and Celery workers."""
    return float(get("HEALTH_TIMEOUT"))


def max_chain_depth() -> int:
    """Most runs in a row that other runs may start (chains and triggers fired inside runs)."""
    return int(get("MAX_CHAIN_DEPTH"))


def trigger_refresh_seconds() -> float | None:
    """Seconds between two reads of the stored triggers by one process (None: no periodic read)."""
    value = get("TRIGGER_REFRESH_SECONDS")
    return None if value is None else float(value)
