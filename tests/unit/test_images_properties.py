"""Properties of image references: only InvalidImageRef on any text; canonical forms are fixed points."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from core.images import InvalidImageRef, parse_image_ref

ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
alnum = st.text(ALNUM, min_size=1, max_size=8)
separator = st.sampled_from([".", "_", "__", "-", "--"])
path_component = st.builds(
    lambda first, rest: first + "".join(sep + part for sep, part in rest),
    alnum,
    st.lists(st.tuples(separator, alnum), max_size=3),
)
domain_label = st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?", fullmatch=True)
host = st.one_of(
    st.builds(".".join, st.lists(domain_label, min_size=2, max_size=3)),
    st.just("localhost"),
    st.builds(lambda a, b: f"[{a:x}::{b:x}]", st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
)
registry = st.builds(
    lambda h, port: h + (f":{port}" if port is not None else ""), host, st.none() | st.integers(1, 65535)
)
tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
digest = st.one_of(
    st.builds(lambda h: f"sha256:{h}", st.text("0123456789abcdef", min_size=64, max_size=64)),
    st.builds(lambda h: f"sha512:{h}", st.text("0123456789abcdef", min_size=128, max_size=128)),
)


def _join(reg: str | None, path: list[str], t: str | None, d: str | None) -> str:
    return (f"{reg}/" if reg else "") + "/".join(path) + (f":{t}" if t else "") + (f"@{d}" if d else "")


paths = st.lists(path_component, min_size=1, max_size=3)
# Without an explicit registry, Docker reads a first component with "." as a registry: keep those for `registry`.
hub_paths = paths.filter(lambda path: len(path) == 1 or "." not in path[0])
reference = st.one_of(
    st.builds(_join, registry, paths, st.none() | tag, st.none() | digest),
    st.builds(_join, st.none(), hub_paths, st.none() | tag, st.none() | digest),
)


@settings(max_examples=400)
@given(reference)
def test_grammar_references_parse_and_canonical_is_a_fixed_point(text: str) -> None:
    ref = parse_image_ref(text)
    again = parse_image_ref(ref.canonical)
    assert again == ref
    assert again.canonical == ref.canonical
    assert ref.tag is not None or ref.digest is not None


@settings(max_examples=600)
@given(st.one_of(st.text(), st.text(ALNUM + "/:@.-_[]"), st.builds(lambda r, junk: r + junk, reference, st.text())))
def test_any_text_parses_or_raises_invalid_image_ref(text: str) -> None:
    try:
        ref = parse_image_ref(text)
    except InvalidImageRef:
        return
    assert parse_image_ref(ref.canonical) == ref
    assert not any(c.isspace() for c in ref.canonical)
