"""A batch of log lines is written in pieces of whole lines that a pipe writes atomically, so that the
processes of `serve --processes N` sharing standard error never cut into each other's lines."""

from __future__ import annotations

import select

from pendingtx.observability.logs import _whole_lines


def test_pieces_are_whole_lines_within_pipe_buf_unless_a_line_is_longer() -> None:
    lines = [b"x" * (n % 300 + 1) + b"\n" for n in range(500)] + [b"y" * 9000 + b"\n", b"z\n"]
    data = b"".join(lines)
    pieces = list(_whole_lines(data))
    assert b"".join(pieces) == data
    assert all(piece.endswith(b"\n") for piece in pieces)
    assert [len(p) for p in pieces if len(p) > select.PIPE_BUF] == [9001]


def test_a_small_batch_is_one_piece() -> None:
    assert list(_whole_lines(b'{"a":1}\n{"b":2}\n')) == [b'{"a":1}\n{"b":2}\n']
    assert list(_whole_lines(b"")) == []
