"""DATAFLOW['API_RATE_LIMIT']: a fixed-window request count per user in the Django cache.

The cache is the project's own (django-redis in production), so the count is shared by every
process using that cache; a local-memory cache counts per process (system check W040).
"""

from __future__ import annotations

import time
from typing import Any

from django.core.cache import cache

from django_dataflow import conf
from django_dataflow.api.errors import ApiError

KEY = "dataflow:api:rate:{user}:{window}"


def check(user: Any) -> None:
    """Count one request of user; ApiError 429 with Retry-After when over the limit."""
    rate = conf.api_rate_limit()
    if rate is None:
        return
    limit, seconds = rate
    now = time.time()
    window = int(now // seconds)
    key = KEY.format(user=user.pk, window=window)
    # add() starts the window atomically; incr() is atomic in Redis and memcached.
    if cache.add(key, 1, timeout=seconds + 1):
        count = 1
    else:
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add() and incr()
            cache.add(key, 1, timeout=seconds + 1)
            count = 1
    if count > limit:
        retry = max(1, int((window + 1) * seconds - now + 0.999))
        raise ApiError(
            429, "RateLimited",
            f"more than {limit} requests in {seconds}s (DATAFLOW['API_RATE_LIMIT']); retry in {retry}s",
            details={"limit": limit, "window_seconds": seconds, "retry_after": retry},
            headers={"Retry-After": str(retry)},
        )
