"""Who votes: annotators by login or by session, and the salted fingerprint of their client."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.sessions.backends.base import SessionBase
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from annotation.models import (
    Annotator,
    Assignment,
    Project,
)

SESSION_ANNOTATOR_KEY = "prefarena_annotator_id"


class NewVisitor(Exception):
    """An anonymous visitor with no annotator yet (see `annotator_get_or_create`)."""


@dataclass(frozen=True)
class ClientFingerprint:
    """Salted hashes of what identifies a client; the raw values are never stored."""

    client_hash: str
    ip_hash: str

    @classmethod
    def from_values(cls, *, ip: str, user_agent: str) -> ClientFingerprint:
        salt = settings.FINGERPRINT_SALT.encode()
        ip_hash = hashlib.sha256(salt + b"ip:" + ip.encode()).hexdigest()
        client_hash = hashlib.sha256(
            salt + b"client:" + ip.encode() + b"\0" + user_agent.encode()
        ).hexdigest()
        return cls(client_hash=client_hash, ip_hash=ip_hash)

    @classmethod
    def from_request(cls, request: HttpRequest) -> ClientFingerprint:
        return cls.from_values(
            ip=client_address(request),
            user_agent=request.headers.get("User-Agent", "")[:500],
        )


def client_address(request: HttpRequest) -> str:
    """The client's IP address. Behind the proxy (`DJANGO_BEHIND_PROXY`), REMOTE_ADDR is the
    proxy's own: the client's is the last address in X-Forwarded-For, the one the proxy added
    (the ones before it are whatever the client sent, and not trusted)."""
    if settings.BEHIND_PROXY:
        forwarded = request.headers.get("X-Forwarded-For", "").split(",")[-1].strip()
        if forwarded:
            return forwarded[:64]
    return request.META.get("REMOTE_ADDR", "")


def annotator_get_or_create(
    *,
    user: AbstractBaseUser | None,
    session: SessionBase,
    project: Project,
    fingerprint: ClientFingerprint | None = None,
    create: bool = True,
) -> Annotator | None:
    """The annotator voting in this browser; None when the project needs a login first.

    Anonymous annotators get a pseudonymous profile remembered by their session. One who logs
    in keeps it: a user with no annotator of their own takes over the session's, with its
    votes, its open pair and its standing (a banned browser stays banned after logging in).
    A user who has one keeps it; the session's votes stay under its pseudonym, and its open
    pair is given back to the arena.
    A new anonymous annotator records the hash of its network from `fingerprint`; with
    `create` False, a visitor who would need one raises NewVisitor instead.
    """
    if user is not None and user.is_authenticated:
        annotator = Annotator.objects.filter(user=user).first()
        if annotator is None:
            annotator = _adopt_session_annotator(user=user, session=session)
        else:
            _release_session_annotator(session=session)
        if annotator is None:
            annotator, _ = Annotator.objects.get_or_create(
                user=user, defaults={"pseudonym": Annotator.new_pseudonym()}
            )
        return annotator
    if project.login_required:
        return None
    annotator_id = session.get(SESSION_ANNOTATOR_KEY)
    if annotator_id is not None:
        annotator = Annotator.objects.filter(pk=annotator_id, user__isnull=True).first()
        if annotator is not None:
            return annotator
    if not create:
        raise NewVisitor()
    annotator = Annotator.objects.create(
        pseudonym=Annotator.new_pseudonym(),
        created_ip_hash=fingerprint.ip_hash if fingerprint is not None else "",
    )
    session[SESSION_ANNOTATOR_KEY] = annotator.pk
    return annotator


def _adopt_session_annotator(*, user: AbstractBaseUser, session: SessionBase) -> Annotator | None:
    """The session's anonymous annotator, now the user's; None when there is none to adopt."""
    annotator_id = session.get(SESSION_ANNOTATOR_KEY)
    if annotator_id is None:
        return None
    try:
        with transaction.atomic():
            adopted = Annotator.objects.filter(pk=annotator_id, user__isnull=True).update(user=user)
    except IntegrityError:  # a concurrent request of the same user created theirs first
        return None
    session.pop(SESSION_ANNOTATOR_KEY, None)
    return Annotator.objects.get(pk=annotator_id) if adopted else None


def _release_session_annotator(*, session: SessionBase) -> None:
    """Forget the session's anonymous annotator and free the pair it held."""
    annotator_id = session.pop(SESSION_ANNOTATOR_KEY, None)
    if annotator_id is not None:
        Assignment.objects.filter(
            annotator_id=annotator_id,
            annotator__user__isnull=True,
            vote__isnull=True,
            expires_at__gt=timezone.now(),
        ).update(expires_at=timezone.now())
