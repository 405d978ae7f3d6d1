"""The dashboard's colours pass WCAG 2.x AA for text (a contrast ratio of at least 4.5:1), computed
from the stylesheet itself: every rule that sets both a colour and a background, and the pairs the
page's custom properties make."""

from __future__ import annotations

import re
from importlib.resources import files

import pytest

from pendingtx.domain.jobs import JobStatus

AA_TEXT = 4.5
RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
HEX = re.compile(r"#[0-9a-fA-F]{6}\b")


def stylesheet() -> str:
    return (files("pendingtx.api.ui") / "static" / "app.css").read_text()


def declarations(body: str) -> dict[str, str]:
    found = {}
    for part in body.split(";"):
        name, sep, value = part.partition(":")
        if sep:
            found[name.strip()] = value.strip()
    return found


def rules() -> list[tuple[str, dict[str, str]]]:
    """Each rule's selector and declarations, custom properties (`var(--ink)`) replaced by their values."""
    text = re.sub(r"/\*.*?\*/", "", stylesheet(), flags=re.DOTALL)
    found = [(selector.strip(), declarations(body)) for selector, body in RULE.findall(text)]
    palette = rule(found, ":root")
    return [
        (
            selector,
            {k: re.sub(r"var\((--[\w-]+)\)", lambda m: palette[m.group(1)], v) for k, v in body.items()},
        )
        for selector, body in found
    ]


def rule(found: list[tuple[str, dict[str, str]]], selector: str) -> dict[str, str]:
    """The declarations of the first rule with this selector."""
    return next(body for named, body in found if named == selector)


def luminance(colour: str) -> float:
    """WCAG's relative luminance of a #rrggbb colour."""

    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_contrast_formula_matches_wcags_known_values() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


def test_every_job_status_has_a_colour_pair_that_passes_aa() -> None:
    found = rules()
    for status in JobStatus:
        pair = rule(found, f".status-{status.value.lower().replace(' ', '-')}")
        assert contrast(pair["color"], pair["background"]) >= AA_TEXT, status


def test_every_rule_with_text_and_background_colours_passes_aa() -> None:
    checked = 0
    for selector, body in rules():
        colour, background = HEX.search(body.get("color", "")), HEX.search(body.get("background", ""))
        if colour and background:
            assert contrast(colour.group(), background.group()) >= AA_TEXT, selector
            checked += 1
    assert checked >= len(JobStatus) + 3


def test_the_pages_own_text_colours_pass_aa() -> None:
    found = rules()
    palette = rule(found, ":root")
    for text in (palette["--ink"], palette["--muted"], palette["--link"]):
        for ground in (palette["--paper"], palette["--ground"]):
            assert contrast(text, ground) >= AA_TEXT, (text, ground)
    # The header's text stands on the header's background.
    header = rule(found, ".top")["background"]
    for selector in (".top", ".top a", ".signout .who", ".signout button"):
        assert contrast(rule(found, selector)["color"], header) >= AA_TEXT, selector
