"""lms.api.feed_json reads a feed entry by entry exactly as json.loads would read it whole."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lms.api import feed_json

values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                     max_size=3), max_leaves=8)


@settings(max_examples=200, deadline=None)
@given(entries=st.lists(st.dictionaries(st.text(max_size=6), values, max_size=4), max_size=6),
       others=st.dictionaries(st.text(max_size=6).filter(lambda k: k != "entries"), values, max_size=3),
       indent=st.sampled_from([None, 0, 2]), first=st.booleans())
def test_entries_come_one_by_one_as_json_loads_reads_them(entries, others, indent, first):
    document = {"entries": entries, **others} if first else {**others, "entries": entries}
    text = json.dumps(document, ensure_ascii=False, indent=indent)
    assert list(feed_json.entries(text)) == entries
    assert {k: v for k, v in feed_json.members(text) if k != feed_json.ENTRY} == others


@pytest.mark.parametrize("text", ['{"entries": [1, 2,]}', '{"entries": [1 2]}', '{"entries": [1]', '{"a" 1}',
                                  '{"entries": []} x', '{entries: []}', '{"entries": [{"a": 1}]', ""])
def test_broken_json_is_refused(text):
    with pytest.raises(ValueError):
        list(feed_json.members(text))


@settings(max_examples=100, deadline=None)
@given(entries=st.lists(st.dictionaries(st.text(max_size=6), values, max_size=4), max_size=9),
       indent=st.sampled_from([None, 0, 2]), size=st.integers(1, 4))
def test_parts_hold_the_entries_as_sent_a_few_at_a_time(entries, indent, size):
    text = json.dumps({"municipality_code": "131016", "entries": entries}, ensure_ascii=False, indent=indent)
    bounds = [at for key, _value, start, end in feed_json.spans(text) if key == feed_json.ENTRY
              for at in (start, end)]
    parts = [json.loads(part.decode("utf-8")) for part in feed_json.parts(text, bounds, size)]
    assert [entry for part in parts for entry in part] == entries
    assert all(1 <= len(part) <= size for part in parts) and len(parts) == -(-len(entries) // size)
