"""Why a vote or a serving is refused: each error carries the HTTP status that explains it."""

from __future__ import annotations


class VoteRejected(Exception):
    """A vote that changes nothing; `status` is the HTTP status that explains it."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidChoice(VoteRejected):
    status = 400


class PairNotServed(VoteRejected):
    status = 404

    def __init__(self, message: str = "This pair was not served to you.") -> None:
        super().__init__(message)


class AlreadyVoted(VoteRejected):
    status = 409


class PairExpired(VoteRejected):
    status = 409


class AnnotatorBanned(VoteRejected):
    status = 403

    def __init__(self, message: str = "This account may no longer vote.") -> None:
        super().__init__(message)


class NetworkBusy(VoteRejected):
    """Anonymous sessions from this network already hold as many open pairs as one may."""

    status = 429

    def __init__(self) -> None:
        super().__init__(
            "Too many people from your network have a pair open in this arena right now. "
            "Log in, or try again in a few minutes. "
            "(If you keep seeing this, let your browser keep this site's cookie.)"
        )


class RateLimited(VoteRejected):
    """Too many votes too fast; `retry_after` is in seconds (the Retry-After header)."""

    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
