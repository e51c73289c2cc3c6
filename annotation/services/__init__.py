"""Writes of the arena: annotators, pair serving, votes, comparisons and the ratings.

Every service runs in one transaction and schedules side effects (tasks) only on commit. One
module per sub-domain; the names callers use are imported here, so `services.vote_submit`
reads the same wherever it is called from.
"""

from annotation.services.annotators import (
    SESSION_ANNOTATOR_KEY,
    ClientFingerprint,
    NewVisitor,
    annotator_get_or_create,
)
from annotation.services.comparisons import (
    comparison_initial_route,
    comparisons_create_for_prompts,
)
from annotation.services.errors import (
    AlreadyVoted,
    AnnotatorBanned,
    InvalidChoice,
    NetworkBusy,
    PairExpired,
    PairNotServed,
    RateLimited,
    VoteRejected,
)
from annotation.services.leaderboard import (
    EAGER_SNAPSHOT_SECONDS,
    ELO_DEBOUNCE_SECONDS,
    counted_votes,
    elo_refresh,
    elo_schedule_refresh,
    leaderboard_board,
    leaderboard_snapshot_create,
    projects_needing_snapshot,
)
from annotation.services.serving import (
    SERVING_MAX_WINDOWS,
    SERVING_WINDOW,
    assignment_next,
    network_is_full,
)
from annotation.services.votes import vote_submit

__all__ = [
    "EAGER_SNAPSHOT_SECONDS",
    "ELO_DEBOUNCE_SECONDS",
    "SERVING_MAX_WINDOWS",
    "SERVING_WINDOW",
    "SESSION_ANNOTATOR_KEY",
    "AlreadyVoted",
    "AnnotatorBanned",
    "ClientFingerprint",
    "InvalidChoice",
    "NetworkBusy",
    "NewVisitor",
    "PairExpired",
    "PairNotServed",
    "RateLimited",
    "VoteRejected",
    "annotator_get_or_create",
    "assignment_next",
    "comparison_initial_route",
    "comparisons_create_for_prompts",
    "counted_votes",
    "elo_refresh",
    "elo_schedule_refresh",
    "leaderboard_board",
    "leaderboard_snapshot_create",
    "network_is_full",
    "projects_needing_snapshot",
    "vote_submit",
]
