"""Rules across accounts: many accounts on one device fingerprint, and lockstep voting."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from annotation.fraud.config import DEFAULT_CONFIG, FraudConfig
from annotation.fraud.records import FINGERPRINT, LOCKSTEP, Signal, VoteRecord


@dataclass(frozen=True)
class LockstepPair:
    """Two accounts that cast the same vote on the same pair within seconds, again and again."""

    first: str
    second: str
    matches: int
    share: float  # matches over the smaller account's timestamped votes


def accounts_by_fingerprint(votes: Iterable[VoteRecord]) -> dict[str, set[str]]:
    """Fingerprint to the accounts seen with it (every fingerprint, shared or not)."""
    accounts: dict[str, set[str]] = defaultdict(set)
    for vote in votes:
        if vote.fingerprint is not None:
            accounts[vote.fingerprint].add(vote.annotator)
    return dict(accounts)


def lockstep_pairs(
    votes: Sequence[VoteRecord], config: FraudConfig = DEFAULT_CONFIG
) -> list[LockstepPair]:
    """Pairs of accounts casting the same vote on the same model pair within seconds.

    Votes are grouped by (unordered model pair, chosen model or tie label) and swept in time
    order, so the cost grows with the number of near-simultaneous identical votes, not with
    the square of the number of accounts. Only pairs with ``lockstep_min_matches`` matches
    covering ``lockstep_min_share`` of the smaller account's votes are returned: two honest
    people agree on a popular pair in the same minute now and then, not every time.
    """
    groups: dict[tuple[str, str, str], list[tuple[float, str]]] = defaultdict(list)
    timed_votes: Counter[str] = Counter()
    for vote in votes:
        if vote.tstamp is None:
            continue
        low, high = sorted((vote.model_a, vote.model_b))
        groups[low, high, vote.chosen].append((vote.tstamp, vote.annotator))
        timed_votes[vote.annotator] += 1
    matches: Counter[tuple[str, str]] = Counter()
    window = config.lockstep_window_seconds
    for entries in groups.values():
        entries.sort()
        for i, (stamp, annotator) in enumerate(entries):
            for later_stamp, other in entries[i + 1 :]:
                if later_stamp - stamp > window:
                    break
                if other != annotator:
                    matches[min(annotator, other), max(annotator, other)] += 1
    pairs = []
    for (first, second), count in matches.items():
        share = count / min(timed_votes[first], timed_votes[second])
        if count >= config.lockstep_min_matches and share >= config.lockstep_min_share:
            pairs.append(LockstepPair(first, second, count, min(share, 1.0)))
    return sorted(pairs, key=lambda pair: (-pair.matches, pair.first, pair.second))


def _rule_signals(
    annotator: str,
    fingerprints: set[str],
    accounts: Mapping[str, set[str]],
    partners: Mapping[str, list[LockstepPair]],
    config: FraudConfig,
) -> list[Signal]:
    signals = []
    if fingerprints:
        shared = max(fingerprints, key=lambda fp: (len(accounts[fp]), fp))
        n = len(accounts[shared])
        if n >= 2:
            # Never a flag on its own: a classroom or an office behind one address, on one
            # browser build, looks exactly like this (see `corroborated_fingerprints`).
            reason = f"shared fingerprint: {n} accounts voted from one device fingerprint"
            signals.append(Signal(FINGERPRINT, n, n, reason, tripped=False))
    mine = partners.get(annotator, [])
    if mine:
        top = mine[0]
        other = top.second if top.first == annotator else top.first
        reason = (
            f"lockstep: cast {top.matches} identical votes within "
            f"{config.lockstep_window_seconds:g} s of {other} ({top.share:.0%} of the "
            f"smaller account's votes), {len(mine)} such partner(s)"
        )
        signals.append(Signal(LOCKSTEP, top.matches, top.matches, reason, tripped=True))
    return signals


def corroborated_fingerprints(
    accounts: Mapping[str, set[str]], flagged: set[str], config: FraudConfig = DEFAULT_CONFIG
) -> dict[str, str]:
    """Annotator to a flagged account they share a fingerprint with, among fingerprints of
    at least ``fingerprint_flag_accounts`` accounts: a sybil ring is flagged together once one
    of its accounts gives itself away, and honest people behind one network never are."""
    partner: dict[str, str] = {}
    for members in accounts.values():
        if len(members) < config.fingerprint_flag_accounts:
            continue
        guilty = sorted(members & flagged)
        for annotator in sorted(members - flagged):
            if guilty:
                partner.setdefault(annotator, guilty[0])
    return partner
