"""manage.py dataflow_token: issue, list and revoke bearer tokens of the HTTP API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone


class Command(BaseCommand):
    """Issue a token (printed once), list a user's tokens, or revoke one by its prefix."""

    help = (
        "Issue an HTTP API bearer token for a user (printed once; only its hash is stored), "
        "list tokens (--list) or revoke one (--revoke PREFIX)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """username, --name, --expires-days, --list, --revoke."""
        parser.add_argument("username", nargs="?", help="The user the token acts as (issue, or --list).")
        parser.add_argument("--name", default="cli", help="What the token is for.")
        parser.add_argument("--expires-days", type=int, help="Refuse the token after this many days.")
        parser.add_argument("--list", action="store_true", help="List tokens (of username, if given).")
        parser.add_argument("--revoke", metavar="PREFIX", help="Revoke the token with this prefix.")

    def handle(self, *args: Any, **options: Any) -> None:
        """Dispatch to issue, list or revoke."""
        from django_dataflow.models import ApiToken

        if options["revoke"]:
            tokens = ApiToken.objects.filter(prefix=options["revoke"], revoked_at__isnull=True)
            if not tokens.exists():
                raise CommandError(f"No active token with prefix {options['revoke']!r}.")
            tokens.update(revoked_at=timezone.now())
            self.stdout.write(f"Revoked {options['revoke']}.")
            return
        if options["list"]:
            tokens = ApiToken.objects.select_related("user")
            if options["username"]:
                tokens = tokens.filter(user__username=options["username"])
            for token in tokens:
                state = "active" if token.active else ("revoked" if token.revoked_at else "expired")
                self.stdout.write(
                    f"{token.prefix}  {token.user.get_username():<20} {token.name:<20} {state:<8} "
                    f"last used {token.last_used_at or 'never'}"
                )
            return
        if not options["username"]:
            raise CommandError("Give the username to issue a token for (or --list / --revoke PREFIX).")
        user = get_user_model()._default_manager.filter(
            **{get_user_model().USERNAME_FIELD: options["username"]}
        ).first()
        if user is None:
            raise CommandError(f"No user {options['username']!r}.")
        days = options["expires_days"]
        if days is not None and days < 1:
            raise CommandError("--expires-days must be at least 1.")
        expires = None if days is None else timezone.now() + timedelta(days=days)
        _token, raw = ApiToken.issue(user, options["name"], expires_at=expires)
        self.stdout.write(raw)
        self.stderr.write("Store this token now: only its hash is kept, it cannot be shown again.")
