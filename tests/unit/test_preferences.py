"""The `Prefer` header parser (RFC 7240) shared by the routes that honour preferences."""

from __future__ import annotations

from pendingtx.api.preferences import parse_preferences


def test_several_preferences_in_one_header_and_in_several() -> None:
    assert parse_preferences(["code=503, delay=200", "wait=5"]) == {
        "code": "503",
        "delay": "200",
        "wait": "5",
    }


def test_names_are_case_insensitive_and_the_first_of_a_repeated_preference_counts() -> None:
    assert parse_preferences(["Code=429", "CODE=500, code=503"]) == {"code": "429"}


def test_parameters_whitespace_quotes_and_bare_preferences() -> None:
    found = parse_preferences([' respond-async ; x=1, wait = "7" ;y="a,b", return=minimal'])
    assert found == {"respond-async": "", "wait": "7", "return": "minimal"}


def test_malformed_elements_are_ignored() -> None:
    assert parse_preferences([",, =3, bad name=1, delay=10"]) == {"delay": "10"}
