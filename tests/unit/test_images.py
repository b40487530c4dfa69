"""Image references: Docker's normalisation and the distribution grammar, with clear errors for everything else."""

from __future__ import annotations

import pytest

from core.images import ImageRef, InvalidImageRef, parse_image_ref

HEX64 = "f" * 64
HEX128 = "a" * 128


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("nginx", "docker.io/library/nginx:latest"),
        ("nginx:1.27", "docker.io/library/nginx:1.27"),
        ("library/nginx", "docker.io/library/nginx:latest"),
        ("docker.io/nginx", "docker.io/library/nginx:latest"),
        ("index.docker.io/nginx:1", "docker.io/library/nginx:1"),
        ("index.docker.io/team/app", "docker.io/team/app:latest"),
        ("bitnami/redis:7.2", "docker.io/bitnami/redis:7.2"),
        ("a/b/c", "docker.io/a/b/c:latest"),
        ("test_com", "docker.io/library/test_com:latest"),
        ("test.com:tag", "docker.io/library/test.com:tag"),
        ("test.com:5000", "docker.io/library/test.com:5000"),
        ("foo_bar.com:8080", "docker.io/library/foo_bar.com:8080"),
        ("foo/foo_bar.com:8080", "docker.io/foo/foo_bar.com:8080"),
        ("test.com/repo:tag", "test.com/repo:tag"),
        ("test:5000/repo", "test:5000/repo:latest"),
        ("localhost/foo", "localhost/foo:latest"),
        ("localhost:5000/foo/bar:v1", "localhost:5000/foo/bar:v1"),
        ("myreg.azurecr.io/team/app:v1.2.3", "myreg.azurecr.io/team/app:v1.2.3"),
        ("mcr.microsoft.com/azurelinux/base/core:3.0", "mcr.microsoft.com/azurelinux/base/core:3.0"),
        ("sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com/bar/baz/quux:some-long-tag"),
        ("b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io/test.example.com/my-app:test.example.com"),
        ("xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com/myimage:xn--n3h.com"),
        ("192.168.1.1:5000/repo", "192.168.1.1:5000/repo:latest"),
        ("[2001:db8::1]:5000/repo:tag", "[2001:db8::1]:5000/repo:tag"),
        ("[2001:db8:1:2:3:4:5:6]/repo", "[2001:db8:1:2:3:4:5:6]/repo:latest"),
        ("Foo/bar", "Foo/bar:latest"),  # Docker treats an upper-case first component as a registry
        ("lowercase:Uppercase", "docker.io/library/lowercase:Uppercase"),
        ("a__b/c.d/e--f_g", "docker.io/a__b/c.d/e--f_g:latest"),
        (f"nginx@sha256:{HEX64}", f"docker.io/library/nginx@sha256:{HEX64}"),
        (f"nginx:1.27@sha256:{HEX64}", f"docker.io/library/nginx:1.27@sha256:{HEX64}"),
        (f"test:5000/repo@sha256:{HEX64}", f"test:5000/repo@sha256:{HEX64}"),
        (f"xn--7o8h.com/img:t@sha512:{HEX128}", f"xn--7o8h.com/img:t@sha512:{HEX128}"),
        ("nginx:" + "t" * 128, "docker.io/library/nginx:" + "t" * 128),
    ],
)
def test_valid_references_normalise_like_docker(text: str, canonical: str) -> None:
    ref = parse_image_ref(text)
    assert ref.canonical == canonical
    assert parse_image_ref(ref.canonical) == ref


def test_parts_of_a_reference() -> None:
    ref = parse_image_ref(f"myreg.azurecr.io:443/team/app:v1@sha256:{HEX64}")
    assert ref == ImageRef(registry="myreg.azurecr.io:443", repository="team/app", tag="v1", digest=f"sha256:{HEX64}")
    assert ref.name == "myreg.azurecr.io:443/team/app"
    assert str(ref) == ref.canonical


def test_tag_is_latest_only_without_digest() -> None:
    assert parse_image_ref("nginx").tag == "latest"
    digest_only = parse_image_ref(f"nginx@sha256:{HEX64}")
    assert digest_only.tag is None
    assert digest_only.digest == f"sha256:{HEX64}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("nginx\n", "whitespace"),
        ("docker.io/library/nginx:1.27\n", "whitespace"),
        (" nginx", "whitespace"),
        ("ngi nx", "whitespace"),
        ("nginx\x00", "whitespace or control"),
        ("nginx\u0085", "whitespace or control"),
        ("nginx\t:1", "whitespace"),
        ("https://myreg.azurecr.io/app:1", "URL"),
        ("oci://x/y", "URL"),
        ("nginx;rm -rf /", "whitespace"),
        ("nginx;id", "shell"),
        ("nginx$(id)", "shell"),
        ("nginx`id`", "shell"),
        ("nginx|cat", "shell"),
        ("nginx&", "shell"),
        ("aa/asdf$$^/aa", "shell"),
        ("Uppercase:tag", "lower-case"),
        ("docker.io/Library/nginx", "lower-case"),
        ("test.com/Repo", "lower-case"),
        (":justtag", "no repository"),
        (f"@sha256:{HEX64}", "no repository"),
        ("nginx:", "invalid tag"),
        ("nginx:-bad", "invalid tag"),
        ("nginx:.bad", "invalid tag"),
        ("nginx:" + "t" * 129, "longer than 128"),
        ("nginx:ta/g", "invalid registry"),  # a first component with ":" is a registry, and "ta" no port
        ("nginx@sha256:abc", "invalid digest"),
        (f"nginx@sha256:{HEX64[:-1]}", "63 hex digits"),
        (f"nginx@sha256:{HEX64}0", "65 hex digits"),
        (f"nginx@sha512:{HEX64}", "expected 128"),
        (f"nginx@sha256:{HEX64.upper()}", "lower-case"),
        (f"nginx@md5:{HEX64}", "unsupported digest algorithm"),
        (f"nginx@sha256:{HEX64}@sha256:{HEX64}", "invalid digest"),
        ("nginx@", "invalid digest"),
        (HEX64, "image id"),
        ("a" * 256, "longer than 255"),
        ("reg.io/" + "/".join(["abcdefgh"] * 28) + "/x", "longer than 255"),
        ("x//y", "empty path component"),
        ("x/", "empty path component"),
        ("/x", "empty path component"),
        ("a___b", "invalid repository component"),
        ("a-.b", "invalid repository component"),
        ("a..b", "invalid repository component"),
        ("-a", "invalid repository component"),
        ("bad_host.com:x/repo", "invalid registry"),
        ("-reg.io/repo", "invalid registry"),
        ("[fe80::1%eth0]:5000/repo", "shell"),
        ("ngïnx", "non-ASCII"),
        ("a" * 2000, "longer than 1024"),
    ],
)
def test_invalid_references_raise_clear_value_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidImageRef, match=message) as caught:
        parse_image_ref(text)
    assert isinstance(caught.value, ValueError)


def test_non_string_input_is_a_value_error() -> None:
    with pytest.raises(InvalidImageRef, match="string"):
        parse_image_ref(b"nginx")  # type: ignore[arg-type]


def test_error_messages_are_bounded_and_escaped() -> None:
    with pytest.raises(InvalidImageRef) as caught:
        parse_image_ref("x;" + "y" * 500 + "\n")
    assert len(str(caught.value)) < 200
    assert "\n" not in str(caught.value)
