"""Terminal tables that never cut what a user must copy: ids and numbers are never wrapped or
truncated; a table too wide for the terminal becomes one record per line."""

from __future__ import annotations

from rich.table import Table


def fitted_table(title: str, columns: list[str], rows: list[dict[str, str]], width: int,
                 flexible: tuple[str, ...] = ()) -> Table | str:
    """A table whose cells are never cut: every column but the `flexible` ones is as wide as its
    widest line; where that does not fit `width`, one record per line instead."""
    def widest(col: str) -> int:
        return max([len(col), *(len(line) for r in rows for line in r[col].splitlines())])

    fixed = [c for c in columns if c not in flexible]
    if sum(widest(c) + 3 for c in fixed) + 12 * len(flexible) > width:
        lines = [title]
        for r in rows:
            lines.append("  " + "  ".join(f"{c}={r[c]}" if c != columns[0] else r[c]
                                          for c in columns if r[c]).replace("\n", ", "))
        return "\n".join(lines)
    table = Table(title=title)
    for col in columns:
        if col in flexible:
            table.add_column(col, overflow="fold", ratio=1)
        else:
            table.add_column(col, no_wrap=True, min_width=widest(col),
                             justify="left" if col in (columns[0], "unit") else "right")
    for r in rows:
        table.add_row(*(r[c] for c in columns))
    return table
