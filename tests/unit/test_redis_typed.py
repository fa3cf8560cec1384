"""The helpers that narrow redis-py's reply types to the bytes client the project builds."""

import pytest

from core.redis_typed import members, scored, stream_entries, text


def test_text_decodes_bytes_and_keeps_str() -> None:
    assert text(b"caf\xc3\xa9") == "café"
    assert text("plain") == "plain"


def test_members_decodes_every_member() -> None:
    assert members([b"a", b"b"]) == ["a", "b"]
    assert members({b"x"}) == ["x"]
    assert members([]) == []


def test_members_refuses_a_reply_with_scores() -> None:
    with pytest.raises(TypeError, match="with scores"):
        members([(b"a", 1.0)])


def test_scored_pairs_members_with_float_scores() -> None:
    assert scored([(b"a", 2.5), (b"b", 1)]) == [("a", 2.5), ("b", 1.0)]
    assert all(isinstance(s, float) for _, s in scored([(b"b", 1)]))


def test_stream_entries_of_one_stream() -> None:
    entry = (b"1-0", {b"job_id": b"j"})
    assert stream_entries([[b"jobs", [entry]]]) == [entry]
    assert stream_entries([]) == []
    assert stream_entries(None) == []
