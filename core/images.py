"""Container image references: parsed, validated and normalised the way Docker does.

The grammar is github.com/distribution/reference (regexp.go, normalize.go) with go-digest's digest rules:

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [domain "/"] path-component ["/" path-component]*     (at most 255 characters in all)
    domain     := (domain-name | "[" IPv6 "]") [":" port]
    path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
    tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest     := algorithm ":" hex     (sha256: 64, sha384: 96, sha512: 128 lower-case hex digits)

Normalisation follows `ParseNormalizedNamed` + `TagNameOnly`: a first component without "." or ":" that is not
"localhost" and has no upper case is a Docker Hub path (`docker.io`, plus `library/` for a single component);
`index.docker.io` becomes `docker.io`; `:latest` is added only when neither tag nor digest is given; a digest is kept,
and so is a tag given with it. Registry host case is kept, as Docker keeps it (lower-casing "Foo/bar" would turn a
registry into a Docker Hub path and break re-parsing). A first component with "." or ":" is always a registry and
must be a valid host: "a_b.c/x" is rejected, where Docker's Parse would fall back to an odd registry-less path.

Why not the `docker-image-py` package (0.2.0, checked against these cases): it anchors with `^...$`, so "nginx\\n"
parses as a valid reference; its errors do not derive from ValueError; and it needs the `regex` C extension. Parsing
here splits on "@" and the last ":" first and validates each part with `fullmatch`, so every error says which part
is wrong and no pattern can backtrack badly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_REGISTRY = "docker.io"
LEGACY_DEFAULT_REGISTRY = "index.docker.io"
OFFICIAL_REPOSITORY_PREFIX = "library/"
LOCALHOST = "localhost"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255
TAG_LENGTH_MAX = 128
REFERENCE_LENGTH_MAX = 1024
DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
MAX_PORT = 65_535

_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")
_SHELL_METACHARACTERS = re.compile(r"[;&|$`<>()'\"\\!*?{}~#%^,=]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN_COMPONENT = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = re.compile(rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*):([0-9a-fA-F]{32,})")
_IDENTIFIER = re.compile(r"[a-f0-9]{64}")


class InvalidImageRef(ValueError):
    """The text is not a valid container image reference."""


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A normalised image reference; `canonical` re-parses to the same ImageRef."""

    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        """`registry/repository`, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def canonical(self) -> str:
        """The fully qualified reference: `registry/repository[:tag][@digest]`."""
        tag = f":{self.tag}" if self.tag else ""
        digest = f"@{self.digest}" if self.digest else ""
        return f"{self.registry}/{self.repository}{tag}{digest}"

    def __str__(self) -> str:
        return self.canonical


def _shown(text: str) -> str:
    """A bounded, escaped rendering of hostile input for error messages."""
    return repr(text[:80] + ("..." if len(text) > 80 else ""))


def _check_text(text: object) -> str:
    if not isinstance(text, str):
        raise InvalidImageRef(f"image reference must be a string, not {type(text).__name__}")
    if not text:
        raise InvalidImageRef("image reference is empty")
    if len(text) > REFERENCE_LENGTH_MAX:
        raise InvalidImageRef(f"image reference is longer than {REFERENCE_LENGTH_MAX} characters")
    if _SPACE_OR_CONTROL.search(text):
        raise InvalidImageRef(f"image reference {_shown(text)} contains whitespace or control characters")
    if "://" in text:
        raise InvalidImageRef(f"image reference {_shown(text)} is a URL; give registry/repository[:tag][@digest]")
    if _SHELL_METACHARACTERS.search(text):
        raise InvalidImageRef(f"image reference {_shown(text)} contains a shell metacharacter")
    if _NON_ASCII.search(text):
        raise InvalidImageRef(f"image reference {_shown(text)} contains non-ASCII characters")
    return text


def _check_digest(digest: str) -> str:
    matched = _DIGEST.fullmatch(digest)
    if not matched:
        raise InvalidImageRef(f"invalid digest {_shown(digest)}: expected algorithm:hex (e.g. sha256:<64 hex>)")
    algorithm, hex_part = matched.groups()
    expected = DIGEST_HEX_LENGTHS.get(algorithm)
    if expected is None:
        raise InvalidImageRef(f"unsupported digest algorithm {_shown(algorithm)} (use {', '.join(DIGEST_HEX_LENGTHS)})")
    if len(hex_part) != expected:
        raise InvalidImageRef(f"invalid {algorithm} digest: {len(hex_part)} hex digits, expected {expected}")
    if hex_part != hex_part.lower():
        raise InvalidImageRef(f"invalid {algorithm} digest: hex digits must be lower-case")
    return digest


def _check_tag(tag: str) -> str:
    if len(tag) > TAG_LENGTH_MAX:
        raise InvalidImageRef(f"tag is longer than {TAG_LENGTH_MAX} characters")
    if not _TAG.fullmatch(tag):
        raise InvalidImageRef(f"invalid tag {_shown(tag)}: use letters, digits, _ . - and do not start with . or -")
    return tag


def _split_registry(name: str) -> tuple[str, str]:
    """Docker's splitDockerDomain: which part of `name` is the registry."""
    first, slash, rest = name.partition("/")
    if not slash or (not any(c in first for c in ".:") and first != LOCALHOST and first.lower() == first):
        registry, repository = DEFAULT_REGISTRY, name
    else:
        registry, repository = first, rest
        if not _DOMAIN.fullmatch(registry):
            raise InvalidImageRef(f"invalid registry {_shown(registry)}")
        port = registry.rpartition(":")[2] if not registry.endswith("]") else ""
        if port.isdigit() and not 0 < int(port) <= MAX_PORT:
            raise InvalidImageRef(f"invalid registry {_shown(registry)}: port must be 1-{MAX_PORT}")
    if registry == LEGACY_DEFAULT_REGISTRY:
        registry = DEFAULT_REGISTRY
    if registry == DEFAULT_REGISTRY and "/" not in repository:
        repository = OFFICIAL_REPOSITORY_PREFIX + repository
    return registry, repository


def _check_repository(repository: str) -> str:
    if repository != repository.lower():
        raise InvalidImageRef(f"repository {_shown(repository)} must be lower-case")
    for component in repository.split("/"):
        if not component:
            raise InvalidImageRef(f"repository {_shown(repository)} has an empty path component")
        if not _PATH_COMPONENT.fullmatch(component):
            raise InvalidImageRef(
                f"invalid repository component {_shown(component)}: use a-z 0-9 separated by . _ __ or -"
            )
    return repository


def parse_image_ref(text: str) -> ImageRef:
    """Parse and normalise `text`; raise InvalidImageRef with a clear message for anything else."""
    _check_text(text)
    name_and_tag, at, digest_text = text.partition("@")
    digest = _check_digest(digest_text) if at else None
    tag: str | None = None
    colon = name_and_tag.rfind(":")
    if colon > name_and_tag.rfind("/"):
        name, tag = name_and_tag[:colon], _check_tag(name_and_tag[colon + 1 :])
    else:
        name = name_and_tag
    if not name:
        raise InvalidImageRef(f"image reference {_shown(text)} has no repository name")
    if _IDENTIFIER.fullmatch(name):
        raise InvalidImageRef("a 64-hex-digit image id is not a repository name")
    registry, repository = _split_registry(name)
    _check_repository(repository)
    if len(registry) + 1 + len(repository) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidImageRef(f"repository name is longer than {NAME_TOTAL_LENGTH_MAX} characters")
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return ImageRef(registry=registry, repository=repository, tag=tag, digest=digest)
